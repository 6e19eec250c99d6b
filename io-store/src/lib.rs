//! io-store
