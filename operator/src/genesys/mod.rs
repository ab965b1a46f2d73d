//! Genesys Cloud client for what the operator does there: OAuth client
//! credentials and the Open Messaging integration's lifecycle.

pub mod error;
mod http;
pub mod integrations;
pub mod oauth;

pub use error::{ApiFailure, ErrorBody, GenesysError};
pub use integrations::{
    DeleteOutcome, EnsureOutcome, GenesysClient, IntegrationSpec, OpenIntegration, PollPolicy,
};
pub use oauth::ClientCredentials;
