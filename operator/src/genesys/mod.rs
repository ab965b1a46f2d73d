//! Genesys Cloud client for what the operator does there: OAuth client
//! credentials and the Open Messaging integration's lifecycle.

pub mod directory;
pub mod error;
pub mod integrations;

pub use directory::IntegrationDirectory;
pub use error::GenesysError;
pub use integrations::{
    DeleteOutcome, EnsureOutcome, GenesysClient, IntegrationSpec, OpenIntegration, PollPolicy,
};
pub use um_genesys::{ApiFailure, ClientCredentials, ErrorBody, LoginError};
