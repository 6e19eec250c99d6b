//! # io-channels
//!
//! Delivery channels for the io engine: each implements [`io_core::Channel`], lives in its own
//! module behind its own cargo feature, and classifies every answer of its provider into an
//! [`io_core::Outcome`]. Channels never retry, sleep or schedule: the engine does.
//!
//! | channel | feature | protocol | idempotency key | effect of `InvalidRecipient` |
//! |---|---|---|---|---|
//! | [`inbox`] | `inbox` (default) | the engine's own store | the message id | none: the inbox always exists |
//!
//! Email, APNs, FCM, PEC and webhook channels follow (see ARCHITECTURE.md).

#[cfg(feature = "inbox")]
pub mod inbox;

#[cfg(feature = "inbox")]
pub use inbox::InboxChannel;
