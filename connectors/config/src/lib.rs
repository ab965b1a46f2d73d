//! The one configuration contract shared by `um-operator` (which renders it)
//! and `um-connector` (which reads it).
//!
//! The operator resolves every Tenant's Secret references and writes, per
//! service, one [`ServiceConfig`] as JSON into a Kubernetes Secret under the
//! key [`CONFIG_FILE_NAME`]. The connector pods mount that Secret and reload
//! the file when it changes; they never talk to the Kubernetes API.

mod messaging;
mod platform;
mod secret;
mod service;

pub use messaging::*;
pub use platform::{GCLOUDCX_SERVICE, Platform, Support, connector_runs};
pub use secret::Secret;
pub use service::*;
