//! # pec-simulator
//!
//! A PEC provider as io sees one, for tests and demos: it takes submissions over SMTP (AUTH
//! PLAIN or LOGIN, plain TCP: loopback only) and, as the sender's and the recipient's
//! providers would, delivers the receipts of each into the sender's mailbox on a real IMAP
//! server (IMAP `APPEND`), each with its `daticert.xml`.
//!
//! What happens to a submission is chosen by the recipient's local part, so one simulator
//! serves every case of a test:
//! - `non-accettazione…@`: refused by the sender's provider (`non-accettazione`);
//! - `errore-consegna…@`: accepted, then not delivered (`errore-consegna`);
//! - `preavviso…@`: accepted, a 12-hour warning, then delivered;
//! - `virus…@`: accepted, then stopped (`rilevazione-virus`);
//! - `silenzio…@`: accepted, and nothing more (a delivery receipt that never comes);
//! - `muto…@`: not even accepted (an acceptance that never comes);
//! - anything else: accepted, then delivered (`avvenuta-consegna`, complete).
//!
//! Receipts are S/MIME signed with a key the simulator makes when it starts; a mailbox reader
//! trusts its certificate ([`Simulator::certificate_pem`]) as it would a provider's.

pub mod outcome;
mod smtp;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use io_channels::pec::compose::Signer;
pub use outcome::Outcome;

/// Where the sender's mailbox is, and who the simulated provider is.
#[derive(Debug, Clone)]
pub struct Config {
    /// The IMAP server holding the sender's mailbox.
    pub imap: SocketAddr,
    /// The mailbox's user (also the SMTP user the simulator accepts).
    pub user: String,
    /// The mailbox's password (also the SMTP password).
    pub password: String,
    /// The provider's domain, in identifiers and the receipts' sender.
    pub provider_domain: String,
}

/// A running simulator.
pub struct Simulator {
    /// Where it takes submissions.
    pub smtp: SocketAddr,
    certificate_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Makes its signing key and listens for SMTP on `listen` (port 0: any free port).
    pub async fn start(listen: SocketAddr, config: Config) -> std::io::Result<Self> {
        let signer = Signer::generate(&config.provider_domain).map_err(std::io::Error::other)?;
        let certificate_pem = signer.certificate_pem();
        let listener = TcpListener::bind(listen).await?;
        let smtp = listener.local_addr()?;
        let task = tokio::spawn(smtp::serve(listener, Arc::new(config), Arc::new(signer)));
        Ok(Self {
            smtp,
            certificate_pem,
            task,
        })
    }

    /// The certificate its receipts are signed under, PEM: the one a mailbox reader trusts.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Stops listening (sessions in progress end with it).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
