//! PEC (Posta Elettronica Certificata): certified email to a citizen's digital domicile, whose
//! receipts from the providers have the legal value of a registered letter with return receipt.
//!
//! So far this module holds what every later part reads: the certification data a provider
//! attaches to each envelope and receipt ([`daticert`]), parsed strictly into types, and the
//! recognition of a receipt in the sender's mailbox ([`receipt`]), its headers cross-checked
//! with that data.

pub mod daticert;
pub mod receipt;
