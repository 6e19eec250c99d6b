//! # io-store
//!
//! Durable [`io_core::Store`] implementations.
//!
//! - [`sled_store`]: [`SledStore`], the embedded default: one process, one directory, one sled
//!   tree written by one committer thread in atomic batches with group commit (many concurrent
//!   writers share one batch and one flush), and the task queue in memory.
//!
//! - [`postgres_store`] (feature `postgres`): [`PostgresStore`], several io processes on one
//!   PostgreSQL database: a table per record kind, the task queue shared through row locks
//!   (`FOR UPDATE SKIP LOCKED`), wake-ups through `LISTEN`/`NOTIFY`.
//!
//! Every backend passes the conformance suite in `tests/conformance.rs`, written once against
//! the `Store` trait.

#[cfg(feature = "postgres")]
pub mod postgres_store;
pub mod sled_store;

#[cfg(feature = "postgres")]
pub use postgres_store::{
    DEFAULT_MAX_CONNECTIONS, PostgresOptions, PostgresStore, PostgresStoreError,
};
pub use sled_store::{
    CheckReport, DEFAULT_CACHE_BYTES, DamagedRecord, Durability, SledStore, SledStoreError,
};
