//! # io-store
//!
//! Durable [`io_core::Store`] implementations.
//!
//! - [`sled_store`]: [`SledStore`], the embedded default: one process, one directory, atomic
//!   multi-tree transactions and group commit (many concurrent writers share one flush).
//!
//! Every backend passes the conformance suite in `tests/conformance.rs`, written once against
//! the `Store` trait.

pub mod sled_store;

pub use sled_store::{Durability, SledStore, SledStoreError};
