//! The one configuration contract shared by `um-operator` (which renders it)
//! and `um-connector` (which reads it).
//!
//! The operator resolves every Tenant's Secret references and writes, per
//! Tenant and service, one small Secret in the installation's namespace
//! ([`layout`]); a connector watches the Secrets labelled with its service
//! and assembles them into one [`ServiceConfig`]. Tests and the flow suite
//! give a connector the same [`ServiceConfig`] as a file instead.

pub mod layout;
mod messaging;
mod platform;
mod secret;
mod service;

pub use messaging::*;
pub use platform::{GCLOUDCX_SERVICE, Platform, Support, connector_runs};
pub use secret::Secret;
pub use service::*;
