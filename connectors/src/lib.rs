//! The data plane of Universal Messaging: shared connector machinery and one
//! module per service.
//!
//! - [`envelope`]: the normalised message every service speaks on the bus.
//! - [`platform`]: the trait a messaging platform implements (the only door
//!   into the machinery), [`registry`]: which services this binary runs.
//! - [`bus`]: RabbitMQ topology, confirmed publishing, ordered consuming
//!   with retry in place and dead letters.
//! - [`store`]: Redis state (de-duplication, done markers, key/value);
//!   [`parts`]: the parts of one delivery sent once across retries.
//! - [`server`], [`service`]: the HTTP server and the generic platform
//!   service (webhooks, media, outbound deliveries, tenant changes).
//! - [`config_watch`], [`settings`], [`runtime`]: configuration file, env
//!   settings, and everything wired together.
//! - [`http_client`], [`verify`], [`media`], [`metrics`]: cross-cutting
//!   helpers; logging is the shared `um-telemetry` crate.

pub mod bus;
pub mod config_watch;
pub mod envelope;
pub mod gcloudcx;
pub mod http_client;
pub mod line;
pub use um_telemetry as logging;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod parts;
pub mod platform;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod service;
pub mod settings;
pub mod slack;
pub mod store;
pub mod teams;
pub mod telegram;
pub mod text;
pub mod verify;
pub mod viber;
