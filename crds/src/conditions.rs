//! Condition types and reasons the operator writes into `status.conditions`.
//! One place, so the operator, the docs and the e2e tests agree on the words.

/// Everything below is true: the Tenant works end to end.
pub const READY: &str = "Ready";
/// Every Secret reference resolved to a present key.
pub const CREDENTIALS_RESOLVED: &str = "CredentialsResolved";
/// The Open Messaging integration exists in Genesys Cloud and is current.
pub const INTEGRATION_REGISTERED: &str = "IntegrationRegistered";
/// The connector Deployment of the Tenant's platform is available.
pub const CONNECTOR_AVAILABLE: &str = "ConnectorAvailable";
/// The Tenant's Storage (named or default) exists and is usable.
pub const STORAGE_RESOLVED: &str = "StorageResolved";
/// Storage and NotifierDestination: the configuration was accepted and
/// handed to the services.
pub const ACCEPTED: &str = "Accepted";
/// Storage: more than one Storage in the namespace is marked default (CEL
/// cannot see other objects, so the operator reports it).
pub const DEFAULT_CONFLICT: &str = "DefaultConflict";

/// This version of Universal Messaging can serve the resource: False for a
/// Tenant of a preview platform (`PlatformNotSupported`) or of PureConnect
/// (`CxNotSupported`), and for every Storage (`NotImplemented`). Ready then
/// takes the same reason.
pub const SUPPORTED: &str = "Supported";

/// Every object rendered for the Tenant (connector Deployments, Services,
/// autoscalers, configuration Secrets, the Ingress) was applied. False
/// (`ApplyFailed`) names the object the apiserver refused and its answer:
/// a quota, an admission policy, a conflict.
pub const RECONCILED: &str = "Reconciled";

/// Condition status values.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";
