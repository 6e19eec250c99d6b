//! PEC (Posta Elettronica Certificata): certified email to a citizen's digital domicile, whose
//! receipts from the providers have the legal value of a registered letter with return receipt.
//!
//! - [`submission`]: the channel, submitting a message with legal value to the sender's PEC
//!   provider over SMTP; the delivery then waits for its receipts.
//! - [`mailbox`]: the reader of the sender's mailbox over IMAP, handing each receipt to the
//!   engine and moving it out of the inbox once recorded.
//! - [`receipt`]: the recognition of a receipt in the sender's mailbox, its headers
//!   cross-checked with its certification data, turned into the engine's
//!   [`io_core::pec::Receipt`].
//! - [`signature`]: the providers' S/MIME signatures, checked against the trusted certificates.
//! - [`compose`]: receipts composed and signed as a provider sends them (the simulator's and
//!   the tests').
//! - [`daticert`]: the certification data a provider attaches to each envelope and receipt,
//!   parsed strictly into types.

pub mod compose;
pub mod daticert;
pub mod mailbox;
pub mod receipt;
pub mod signature;
pub mod submission;

pub use mailbox::{MailboxConfig, ReceiptReader};
pub use submission::{PecChannel, PecConfig};
