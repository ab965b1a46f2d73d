//! The gcloudcx connector: the Genesys Cloud CX Open Messaging side of every
//! tenant.
//!
//! Pure: [`api`] (wire types), [`to_genesys`] (envelope → inbound
//! requests), [`from_genesys`] (outbound webhook → envelope), [`signature`].
//! I/O: [`oauth`] (tokens), [`genesys_api`] (posting), [`deliver`] (the
//! `um.to-cx` consumer), [`webhook`] (`/openmessaging/{tenant}`),
//! [`service`] (wiring).

pub mod api;
pub mod deliver;
pub mod from_genesys;
pub mod genesys_api;
pub mod oauth;
pub mod service;
pub mod signature;
pub mod to_genesys;
pub mod webhook;

pub use service::run;
