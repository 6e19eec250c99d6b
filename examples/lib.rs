//! # io-examples
//!
//! Shared parts of io's example programs, public so that `tests/examples_run.rs` runs exactly
//! the code the `quickstart` example runs. The examples themselves sit beside this file:
//! `quickstart.rs` (embed the engine, no server) and `custom_channel.rs` (a third-party channel
//! over HTTP).
//!
//! Modules, one concept each:
//! - [`demo`]: the quickstart's cast: one service and one citizen per behaviour of the channel
//!   decision (io-reference §4), and the messages sent to them.
//! - [`email_stand_in`]: an email channel that sends nothing and counts what it would send,
//!   standing in for the real SMTP channel of a later release.
//! - [`run`]: the quickstart itself: store the cast, build an [`io_core::Engine`], submit a load
//!   concurrently, run the engine until idle, time it.
//! - [`summary`]: what became of every message and delivery, per citizen, plus journal checks.
//! - [`http1`]: the minimal HTTP/1.1 head parsing both sides of the SMS example share.
//! - [`sms_gateway`]: the simulated third-party SMS gateway that `custom_channel` talks to over
//!   loopback HTTP (the provider's side, not the plugin).

pub mod demo;
pub mod email_stand_in;
pub mod http1;
pub mod run;
pub mod sms_gateway;
pub mod summary;

pub use demo::{Category, Citizen, Demo};
pub use email_stand_in::{CountingEmailChannel, EmailCounts};
pub use run::{QuickstartError, QuickstartOptions, QuickstartRun, Sent, run_quickstart};
pub use summary::{Summary, Tally};
