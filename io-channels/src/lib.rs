//! io-channels
