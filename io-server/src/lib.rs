//! # io-server
//!
//! The HTTP face of io: IO's Services API (`/api/v1`, so an institution integrated with IO
//! switches by changing its base URL), the citizen API (`/app/v1`), the admin API (`/adm`),
//! operations endpoints and the `io-server` command line. The engine, store and channels are
//! the workspace's other crates; this crate only translates HTTP to them. It is generic over
//! the [`io_core::Store`] (`App<S>`): everything it keeps — service access, message flags,
//! the subscriptions feed, GDPR requests, callback registrations — is a typed record of the
//! store, and every change that touches several records is one atomic store operation.
//!
//! Modules: [`config`] (defaults, TOML, `IO_…`), [`app`] (shared state, store choice, router),
//! [`serve`] (listener, workers, graceful shutdown), one module per API ([`services_api`],
//! [`citizen_api`], [`admin_api`], [`ops`]), and the pieces they share: [`problem`]
//! (problem+json), [`body`] (JSON bodies), `authenticated` (the callers as extractors), [`api_keys`] (derivation and authentication),
//! [`request_headers`] (credentials and the forwarded client address), [`request_id`] (`X-Request-Id` and the request's log span), [`institution_limit`], [`citizen_token`], [`secrets`], [`data_dir`], [`views`] (IO's JSON
//! shapes), [`metrics`], [`callbacks`] (the `[callbacks]` configuration and registrations; the
//! engine sends them), [`openapi`].

pub mod admin_api;
pub mod api_keys;
pub mod app;
mod authenticated;
pub mod body;
pub mod callbacks;
pub mod citizen_api;
pub mod citizen_token;
pub mod config;
pub mod data_dir;
pub mod evidence;
pub mod institution_limit;
pub mod manage_api;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod problem;
mod query_number;
pub mod request_headers;
pub mod request_id;
pub mod secrets;
pub mod serve;
pub mod services_api;
pub mod store_check;
pub mod views;

pub use app::{App, router};
pub use config::ServerConfig;
