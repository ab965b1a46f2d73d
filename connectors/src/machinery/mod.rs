//! What every connector service shares; no module here names a platform.
//!
//! - [`envelope`]: the normalised message every service speaks on the bus.
//! - [`bus`]: RabbitMQ topology, confirmed publishing, ordered consuming,
//!   conversations parked in Redis while their delivery fails, dead
//!   letters.
//! - [`store`]: Redis state (de-duplication, done markers, key/value),
//!   every key with a TTL; [`departures`]: a deleted Tenant's state purged;
//!   [`parts`]: the parts of one delivery sent once across retries.
//! - [`server`], [`service`]: the HTTP server and the generic platform
//!   service (webhooks, media, outbound deliveries, tenant changes).
//! - [`config_watch`], [`config_kube`], [`settings`], [`runtime`]: the
//!   service configuration (from a file or from its Secrets), env settings,
//!   and everything wired together.
//! - [`verify`]: the one door for signatures (HMAC, constant-time compare);
//!   [`http_client`] with [`url_policy`], [`media`], [`metrics`],
//!   [`notify`], [`text`]: cross-cutting helpers.

pub mod bus;
pub mod config_kube;
pub mod config_watch;
pub mod departures;
pub mod envelope;
pub mod http_client;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod parts;
pub mod runtime;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
pub mod text;
pub mod url_policy;
pub mod verify;
