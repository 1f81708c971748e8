//! A TCP forwarder a test can cut and restore: a cluster that becomes
//! unreachable (connection refused, open connections dropped) and comes
//! back on the same address, as a remote cluster behind a failed link does.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to `upstream` while up.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Start forwarding to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let mut p = Proxy {
            addr,
            upstream,
            accept: None,
        };
        p.serve(listener);
        p
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Refuse new connections and drop the open ones.
    pub fn cut(&mut self) {
        if let Some(task) = self.accept.take() {
            // Aborting the accept task drops the listener and, through the
            // JoinSet it owns, every connection task.
            task.abort();
        }
    }

    /// Forward again, on the same address.
    pub async fn restore(&mut self) {
        assert!(self.accept.is_none(), "proxy already up");
        let listener = crate::wait::until(
            "rebind the proxy's port",
            std::time::Duration::from_secs(10),
            || async { TcpListener::bind(self.addr).await.ok() },
        )
        .await;
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.accept = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
