//! What the operator and the connectors both say to Genesys Cloud: the OAuth
//! client-credentials login with its token cache, and the shape of Genesys'
//! error answers. The operator manages Open Messaging integrations with it,
//! the gcloudcx connector posts guests' messages; neither has its own login.

pub mod error;
pub mod http;
pub mod oauth;

pub use error::{ApiFailure, ErrorBody};
pub use oauth::{ClientCredentials, LoginError, Token, TokenCache, login};
