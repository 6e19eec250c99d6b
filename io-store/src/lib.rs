//! # io-store
//!
//! Durable [`io_core::Store`] implementations.
//!
//! - [`sled_store`]: [`SledStore`], the embedded default: one process, one directory, one sled
//!   tree written by one committer thread in atomic batches with group commit (many concurrent
//!   writers share one batch and one flush), and the task queue in memory.
//!
//! Every backend passes the conformance suite in `tests/conformance.rs`, written once against
//! the `Store` trait.

pub mod sled_store;

pub use sled_store::{
    CheckReport, DEFAULT_CACHE_BYTES, DamagedRecord, Durability, SledStore, SledStoreError,
};
