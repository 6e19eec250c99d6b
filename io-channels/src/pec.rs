//! PEC (Posta Elettronica Certificata): certified email to a citizen's digital domicile, whose
//! receipts from the providers have the legal value of a registered letter with return receipt.
//!
//! So far this module holds what every later part reads: the certification data a provider
//! attaches to each envelope and receipt ([`daticert`]), parsed strictly into types.

pub mod daticert;
