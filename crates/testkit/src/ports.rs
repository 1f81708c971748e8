//! Loopback ports.

use std::io;

/// A loopback port nothing listens on now: the OS picked it free, and the
/// listener that held it is closed. For a server told to listen there, or
/// for an address that must refuse connections.
pub fn unused() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
