//! The three reconcilers and what they share: the context, the error type
//! with its back-off policy, server-side apply, the orphan sweep, Events.

pub mod data_plane;
pub mod notifier;
mod secret_index;
pub mod storage;
pub mod tenant;

#[cfg(test)]
mod reconcile_tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ObjectReference, Secret as KubeSecret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use um_crds::{Storage, Tenant};

use crate::conditions;
use crate::config::OperatorConfig;
use crate::genesys::{GenesysClient, GenesysError, IntegrationDirectory};
use crate::metrics::Metrics;
use crate::model::GenesysAccess;

/// The one field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "um-operator";
/// Healthy objects are re-checked about this often, for what no watch
/// shows (an integration edited in Genesys Cloud). Everything in the
/// cluster reaches the operator through its watches: at rest it sends the
/// apiserver nothing but Lease renewals.
pub const RESYNC: Duration = Duration::from_secs(6 * 60 * 60);

/// Resyncs are spread over this window, so thousands of objects applied
/// at once are not re-checked at once.
const RESYNC_SPREAD_SECONDS: u64 = 60 * 60;

/// When to re-check a healthy object: [`RESYNC`] plus a spread derived from
/// its uid (stable, so a restart keeps the spread).
pub fn resync_after(uid: Option<&str>) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.unwrap_or_default().hash(&mut hasher);
    RESYNC + Duration::from_secs(hasher.finish() % RESYNC_SPREAD_SECONDS)
}

/// The controllers' caches a reconcile reads.
pub struct Stores {
    pub tenants: Store<Tenant>,
    pub storages: Store<Storage>,
}

pub struct Context {
    pub client: Client,
    pub config: Arc<OperatorConfig>,
    /// Publishes Warnings, aggregating repeats into a series.
    recorder: Recorder,
    reporter: Reporter,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    /// The Tenant controller's cache (the data plane reads which services
    /// are in use; Storage changes map to the Tenants of their namespace).
    tenants: Store<Tenant>,
    /// The Storage controller's cache (a Tenant's StorageResolved).
    storages: Store<Storage>,
    /// The installation's shared objects, in the operator's namespace.
    pub data_plane: Arc<data_plane::DataPlane>,
    /// One Genesys client (and so one cached token) per OAuth client: the
    /// Tenants of one organisation share a token (10,000 Tenants of one
    /// organisation asked for 10,000 tokens).
    genesys_clients: Mutex<HashMap<String, Arc<GenesysClient>>>,
    /// What the Tenants' organisations hold, shared by their clients.
    integrations: Arc<IntegrationDirectory>,
    /// Consecutive failures per object, for exponential back-off.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        config: Arc<OperatorConfig>,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        http: reqwest::Client,
        stores: Stores,
        data_plane: Arc<data_plane::DataPlane>,
    ) -> Self {
        let Stores { tenants, storages } = stores;
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            config,
            reporter,
            metrics,
            http,
            tenants,
            storages,
            data_plane,
            genesys_clients: Mutex::new(HashMap::new()),
            integrations: Arc::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn tenants(&self) -> &Store<Tenant> {
        &self.tenants
    }

    pub fn storages(&self) -> &Store<Storage> {
        &self.storages
    }

    /// The cached client for an OAuth client, rebuilt when its secret
    /// changed.
    pub fn genesys_client(&self, access: &GenesysAccess) -> Arc<GenesysClient> {
        let key = format!(
            "{} {} {}",
            access.endpoints.api_base_url,
            access.endpoints.login_base_url,
            access.credentials.client_id
        );
        let mut clients = self
            .genesys_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key)
            && client.serves(&access.endpoints, &access.credentials)
        {
            return client.clone();
        }
        let client = Arc::new(
            GenesysClient::new(
                self.http.clone(),
                access.endpoints.clone(),
                access.credentials.clone(),
            )
            .with_directory(self.integrations.clone()),
        );
        clients.insert(key, client.clone());
        client
    }

    fn record_failure(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    pub fn record_success(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Publishes an Event; a failure to publish is logged, never fatal.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(conditions::cut(&note, conditions::NOTE_LIMIT)),
            action: action.to_owned(),
            secondary: None,
        };
        // kube's Recorder keeps every Event it published for six minutes,
        // to turn repeats into a series, and walks them all on each publish.
        // Repeats are Warnings (a failure retried); a Normal Event marks a
        // milestone, which does not repeat, and 10,000 new Tenants made
        // 20,000 of them: those go through a recorder that forgets.
        let recorder = match type_ {
            EventType::Warning => self.recorder.clone(),
            EventType::Normal => Recorder::new(self.client.clone(), self.reporter.clone()),
        };
        if let Err(err) = recorder.publish(&event, reference).await {
            tracing::warn!(error = %err, reason, "publishing an Event failed");
        }
    }

    /// One Event per condition that changed status or reason.
    pub async fn publish_transitions(
        &self,
        reference: &ObjectReference,
        previous: &[Condition],
        next: &[Condition],
    ) {
        for changed in conditions::transitions(previous, next) {
            let type_ = if conditions::is_good(changed) {
                EventType::Normal
            } else {
                EventType::Warning
            };
            self.publish(
                reference,
                type_,
                &changed.reason,
                &changed.type_,
                changed.message.clone(),
            )
            .await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{kind} has no namespace")]
    NoNamespace { kind: &'static str },
    #[error("listing {what} in namespace {namespace} failed: {source}")]
    List {
        what: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {what} {namespace}/{name} failed: {source}")]
    Get {
        what: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying {kind} {namespace}/{name} failed: {source}")]
    Apply {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting orphaned {kind} {namespace}/{name} failed: {source}")]
    Delete {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {kind} {namespace}/{name} failed: {source}")]
    Status {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Genesys Cloud: {0}")]
    Genesys(#[from] GenesysError),
    #[error("finalizer of {name}: {source}")]
    Finalizer {
        name: String,
        #[source]
        source: Box<kube::runtime::finalizer::Error<ReconcileError>>,
    },
}

impl ReconcileError {
    /// Label of the `um_operator_reconcile_errors_total` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::NoNamespace { .. } => "NoNamespace",
            ReconcileError::List { .. } => "List",
            ReconcileError::Get { .. } => "Get",
            ReconcileError::Apply { .. } => "Apply",
            ReconcileError::Delete { .. } => "Delete",
            ReconcileError::Status { .. } => "Status",
            ReconcileError::Genesys(err) => conditions::integration_failure_reason(err),
            ReconcileError::Finalizer { source, .. } => match source.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.metric_label(),
                _ => "Finalizer",
            },
        }
    }

    /// When the apiserver refused to create, change or delete one of the
    /// objects rendered for a resource (not a read, not its own status):
    /// which object, and the apiserver's answer without the Rust noise.
    pub fn refusal(&self) -> Option<String> {
        let (verb, kind, namespace, name, source) = match self {
            ReconcileError::Apply {
                kind,
                namespace,
                name,
                source,
            } => ("applying", kind, namespace, name, source),
            ReconcileError::Delete {
                kind,
                namespace,
                name,
                source,
            } => ("deleting", kind, namespace, name, source),
            _ => return None,
        };
        let answer = match source {
            kube::Error::Api(status) => format!(
                "the apiserver answered {} {}: {}",
                status.code, status.reason, status.message
            ),
            other => other.to_string(),
        };
        Some(format!("{verb} {kind} {namespace}/{name}: {answer}"))
    }

    /// Genesys' `Retry-After`, when the failure was a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Genesys(err) => err
                .rate_limited()
                .map(|delay| delay.unwrap_or(Duration::from_secs(30))),
            ReconcileError::Finalizer { source, .. } => match source.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.retry_after(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// 5 s, doubling per consecutive failure, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_secs(5 * 2u64.pow(exponent)).min(Duration::from_secs(300))
}

/// The shared error policy: count, log, requeue after Genesys' delay or
/// with exponential back-off.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let kind = K::kind(&());
    let key = format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    );
    ctx.metrics
        .reconcile_failed(kind_label(&kind), err.metric_label());
    let delay = err
        .retry_after()
        .unwrap_or_else(|| backoff(ctx.record_failure(&key)));
    tracing::warn!(object = %key, error = %err, retry_in_s = delay.as_secs(), "reconcile failed");
    Action::requeue(delay)
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "Tenant" => "Tenant",
        "Storage" => "Storage",
        "NotifierDestination" => "NotifierDestination",
        _ => "Other",
    }
}

/// Server-side apply with the operator's field manager; returns the object
/// as the apiserver now has it (with status).
pub async fn apply<K>(client: &Client, object: &K) -> Result<K, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| ReconcileError::Apply {
        kind: K::kind(&()).into_owned(),
        namespace,
        name,
        source,
    })
}

/// Deletes the objects of kind K in the namespace that match `selector`
/// (the installation's label) and are not in `keep` (a service was
/// disabled, the last Tenant of a platform left).
pub async fn sweep_orphans<K>(
    client: &Client,
    namespace: &str,
    selector: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<String>, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let existing = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(|source| ReconcileError::List {
            what: "managed objects",
            namespace: namespace.to_owned(),
            source,
        })?;
    let mut deleted = Vec::new();
    for object in existing.items {
        let name = object.name_any();
        if keep.contains(&name) || object.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(ReconcileError::Delete {
                    kind: K::kind(&()).into_owned(),
                    namespace: namespace.to_owned(),
                    name,
                    source,
                });
            }
        }
    }
    Ok(deleted)
}

/// Secret name → its data.
pub type SecretMap = BTreeMap<String, BTreeMap<String, k8s_openapi::ByteString>>;

/// The named Secrets of a namespace as name → data (a missing one is left
/// out: resolution names it). One GET each, so the operator reads only the
/// Secrets objects refer to, never a namespace's whole list.
pub async fn referenced_secrets(
    client: &Client,
    namespace: &str,
    names: impl IntoIterator<Item = String>,
) -> Result<SecretMap, ReconcileError> {
    let api: Api<KubeSecret> = Api::namespaced(client.clone(), namespace);
    let mut secrets = BTreeMap::new();
    for name in names.into_iter().collect::<BTreeSet<_>>() {
        match api.get_opt(&name).await {
            Ok(Some(secret)) => {
                secrets.insert(name, secret.data.unwrap_or_default());
            }
            Ok(None) => {}
            Err(source) => {
                return Err(ReconcileError::Get {
                    what: "Secret",
                    namespace: namespace.to_owned(),
                    name,
                    source,
                });
            }
        }
    }
    Ok(secrets)
}

/// The Secret watches of the three controllers: metadata only and never
/// cached (a change maps to the objects that refer to the Secret), over
/// the watched namespaces only when `watchNamespaces` lists them.
pub fn secret_watches(
    client: &Client,
    config: &OperatorConfig,
) -> Vec<Api<PartialObjectMeta<KubeSecret>>> {
    if config.watch_namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        config
            .watch_namespaces
            .iter()
            .map(|namespace| Api::namespaced(client.clone(), namespace))
            .collect()
    }
}

/// Lists every object of kind K in the namespace.
pub async fn list_in<K>(
    client: &Client,
    namespace: &str,
    what: &'static str,
) -> Result<Vec<K>, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|source| ReconcileError::List {
            what,
            namespace: namespace.to_owned(),
            source,
        })
}

/// Writes `status` with server-side apply on the status subresource.
pub async fn write_status<K, S>(
    client: &Client,
    object: &K,
    status: &S,
) -> Result<(), ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| ReconcileError::Status {
        kind: kind_label(&K::kind(&())),
        namespace,
        name,
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }

    #[test]
    fn rate_limit_delay_comes_from_genesys() {
        let err = ReconcileError::Genesys(GenesysError::List {
            cause: crate::genesys::ApiFailure::RateLimited {
                retry_after: Some(Duration::from_secs(9)),
            },
        });
        assert_eq!(err.retry_after(), Some(Duration::from_secs(9)));
        assert_eq!(err.metric_label(), "RateLimited");
    }
}
