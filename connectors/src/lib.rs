//! The data plane of Universal Messaging. The folders say the architecture:
//!
//! - [`machinery`]: what every service shares (the envelope, the bus, Redis
//!   state, the HTTP server, configuration, signatures, media URLs).
//! - [`platform`]: the trait a messaging platform implements, the only door
//!   into the machinery; [`registry`]: which services this binary runs.
//! - [`platforms`]: one folder per messaging platform, each with the same
//!   file names (`platform.rs` the trait impl, `inbound.rs` webhook →
//!   envelopes, `outbound.rs` envelope → platform requests, `client.rs` the
//!   platform's API, `types.rs` its wire types, `errors.rs` its failures).
//! - [`gcloudcx`]: the contact-center side, Genesys Cloud Open Messaging.
//!
//! Logging is the shared `um-telemetry` crate ([`logging`]).

pub mod gcloudcx;
pub mod machinery;
pub mod platform;
pub mod platforms;
pub mod registry;

pub use um_telemetry as logging;

/// Where a bare topic of `UM_LOG_LEVEL` (`DEBUG:{bus}`, `DEBUG:{telegram}`)
/// is looked for.
pub const LOG_HOMES: &[&str] = &[
    "um_connector::machinery",
    "um_connector::platforms",
    "um_connector",
];
