//! Loopback ports, and a bounded HTTP GET on them.

use std::io;

/// A loopback port nothing listens on now: the OS picked it free, and the
/// listener that held it is closed. For a server told to listen there, or
/// for an address that must refuse connections.
pub fn unused() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// GET `url` on loopback: (status, body), or `None` when nothing answered.
/// Bounded: a server that accepts and never answers must not hang the
/// polling loop that calls this (it checks its deadline between calls).
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = client.get(url).send().await.ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.text().await.ok()?))
}
