//! um-operator: reconciles Tenant, Storage and NotifierDestination into the
//! connector workloads, their configuration Secrets, the Ingress, and the
//! Genesys Cloud Open Messaging integration.

pub mod conditions;
pub mod config;
pub mod controllers;
pub mod genesys;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod region;
pub mod render;
pub mod resolve;
