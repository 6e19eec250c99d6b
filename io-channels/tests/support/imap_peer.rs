//! pymap (PyPI) as the IMAP peer of the PEC mailbox tests; apart from `mod.rs` because only
//! those tests link an IMAP client (the channel bench includes `mod.rs` too).

use std::process::Stdio;
use std::time::Duration;

use crate::support::closed_port;

/// pymap (PyPI) on loopback: an in-memory IMAP4rev1 server with one mailbox user, offering
/// MOVE and IDLE; stops when dropped.
pub(crate) struct ImapPeer {
    pub(crate) port: u16,
    pub(crate) user: &'static str,
    pub(crate) password: &'static str,
    _child: tokio::process::Child,
}

impl ImapPeer {
    pub(crate) async fn start() -> Self {
        let port = closed_port().await;
        let (user, password) = ("protocollo@pec.comune.example.it", "imap-s3greta");
        let child = tokio::process::Command::new("pymap")
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--no-tls"])
            .args(["dict", "--demo-user", user, "--demo-password", password])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pymap must be installed to run the IMAP peer: `pip install pymap==0.36.7` (.ci/run installs it)");
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    user,
                    password,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the IMAP peer (pymap) did not listen on {port} within 15 s");
    }

    /// A logged-in session of the mailbox user, for seeding and inspecting folders.
    pub(crate) async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(self.user, self.password)
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// Delivers `raw` into `folder`, as a provider's receipt arrives.
    pub(crate) async fn append(&self, folder: &str, raw: &[u8]) {
        let mut session = self.session().await;
        session.append(folder, None, None, raw).await.unwrap();
        session.logout().await.unwrap();
    }

    /// The messages of `folder`, raw, in UID order.
    pub(crate) async fn messages(&self, folder: &str) -> Vec<Vec<u8>> {
        use futures::TryStreamExt;
        let mut session = self.session().await;
        session.select(folder).await.unwrap();
        let fetches: Vec<_> = session
            .fetch("1:*", "BODY.PEEK[]")
            .await
            .map(|stream| stream.try_collect::<Vec<_>>())
            .unwrap()
            .await
            .unwrap_or_default();
        let mut found: Vec<(u32, Vec<u8>)> = fetches
            .iter()
            .filter_map(|f| Some((f.message, f.body()?.to_vec())))
            .collect();
        found.sort_by_key(|(n, _)| *n);
        drop(fetches);
        session.logout().await.unwrap();
        found.into_iter().map(|(_, raw)| raw).collect()
    }
}

/// Implicit TLS (IMAPS) in front of `peer`, with the leaf certificate of `ca`: what a provider's
/// port 993 is. Stops when dropped.
pub(crate) struct ImapsFront {
    pub(crate) port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImapsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ImapsFront {
    pub(crate) async fn start(ca: &crate::support::TestCa, peer: &ImapPeer) -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(ca.server_config()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend = peer.port;
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { port, task }
    }
}
