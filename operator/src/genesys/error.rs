//! Errors of the operator's Genesys Cloud client: one variant per step, each
//! carrying what Genesys answered (its `ErrorBody` message), never a credential.

use std::time::Duration;

use um_genesys::{ApiFailure, LoginError};

#[derive(Debug, thiserror::Error)]
pub enum GenesysError {
    /// Getting a token failed, before any integration call.
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("creating the Open Messaging integration {name:?} failed: {cause}")]
    Create { name: String, cause: ApiFailure },
    #[error("Genesys Cloud could not create the Open Messaging integration {id}: {message}")]
    CreateFailed { id: String, message: String },
    #[error("the Open Messaging integration {id} was still being created after {}s", waited.as_secs())]
    CreatePending { id: String, waited: Duration },
    #[error("reading the Open Messaging integration {id} failed: {cause}")]
    Get { id: String, cause: ApiFailure },
    #[error("listing Open Messaging integrations failed: {cause}")]
    List { cause: ApiFailure },
    #[error("updating the Open Messaging integration {id} failed: {cause}")]
    Update { id: String, cause: ApiFailure },
    #[error("deleting the Open Messaging integration {id} failed: {cause}")]
    Delete { id: String, cause: ApiFailure },
}

impl GenesysError {
    fn cause(&self) -> Option<&ApiFailure> {
        match self {
            GenesysError::Login(login) => Some(login.cause()),
            GenesysError::Create { cause, .. }
            | GenesysError::Get { cause, .. }
            | GenesysError::List { cause, .. }
            | GenesysError::Update { cause, .. }
            | GenesysError::Delete { cause, .. } => Some(cause),
            GenesysError::CreateFailed { .. } | GenesysError::CreatePending { .. } => None,
        }
    }

    /// `Some(delay)` when Genesys answered 429; the delay is its
    /// `Retry-After` (None when it sent none).
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        match self.cause() {
            Some(ApiFailure::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }
}
