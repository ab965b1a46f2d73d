//! The gcloudcx connector: the Genesys Cloud CX Open Messaging side of every
//! tenant.

pub mod api;
pub mod from_genesys;
pub mod signature;
pub mod to_genesys;
