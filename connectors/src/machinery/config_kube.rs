//! The kubernetes configuration source: the service's configuration Secrets
//! ([`um_config::layout`]), watched through the Kubernetes API and assembled
//! into the [`ConfigWatcher`]'s [`um_config::ServiceConfig`].
//!
//! The watch keeps one parsed part per Secret name. A Secret that cannot be
//! read (part label missing or unknown, data that does not parse) is
//! reported once and otherwise ignored: whatever it held before stays, so a
//! bad write for one Tenant never takes the others, or that Tenant's last
//! good configuration, away. Secret data holds credentials: nothing here
//! logs it, and parse errors are reduced to their position.
//!
//! [`apply_event`] is the whole bookkeeping, without I/O, so it is tested
//! without a cluster; [`watch`] feeds it from `kube::runtime::watcher`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;
use um_config::ConfigError;
use um_config::layout::{self, ConfigPart, PART_LABEL, Part};

use crate::machinery::config_watch::ConfigWatcher;

/// How long start-up waits for the first complete list of Secrets.
pub const INITIAL_LIST_TIMEOUT: Duration = Duration::from_secs(60);

const RBAC_HINT: &str =
    " (does the connector's ServiceAccount have get/list/watch on secrets there?)";

#[derive(Debug, thiserror::Error)]
pub enum KubeConfigError {
    #[error("no access to the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    #[error("cannot list Secrets in namespace {namespace} with selector {selector}: {cause}{hint}")]
    List {
        namespace: String,
        selector: String,
        cause: String,
        /// The RBAC question when the API server refused us, else empty.
        hint: &'static str,
    },
    #[error("shut down before the configuration Secrets were listed")]
    Cancelled,
}

/// The parsed configuration Secrets of one service, by Secret name.
#[derive(Debug, Default)]
pub struct Parts {
    current: BTreeMap<String, Part>,
    /// Resource version of each Secret last refused, so a bad Secret is
    /// reported once per version rather than on every relist.
    refused: BTreeMap<String, String>,
    /// Built between [`Event::Init`] and [`Event::InitDone`], then swapped in
    /// whole: Secrets deleted while the watch was down are in no event, only
    /// missing from the relist.
    relist: Option<Relist>,
    synced: bool,
}

#[derive(Debug, Default)]
struct Relist {
    parts: BTreeMap<String, Part>,
    refused: BTreeMap<String, String>,
}

impl Parts {
    /// Whether a complete list has been applied (an [`Event::InitDone`]).
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The parts in Secret name order, for [`layout::assemble`].
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        self.current.values()
    }

    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}

/// A Secret left out; `reason` never quotes its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub secret: String,
    pub reason: String,
}

/// What one event did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The parts changed: assemble and publish the configuration again.
    pub changed: bool,
    /// A Secret newly refused: log it (once).
    pub refused: Option<Refusal>,
}

/// Applies one watch event to `parts`, as kube's reflector does to its
/// store: `Apply`/`Delete` change the live parts, `Init` starts a fresh
/// list, `InitApply` fills it, `InitDone` replaces the live parts with it.
pub fn apply_event(parts: &mut Parts, event: Event<Secret>) -> Applied {
    match event {
        Event::Apply(secret) => {
            let Some((name, version, read)) = read_secret(secret) else {
                return Applied::default();
            };
            match read {
                Ok(part) => {
                    parts.refused.remove(&name);
                    let changed = parts.current.get(&name) != Some(&part);
                    parts.current.insert(name, part);
                    Applied {
                        changed,
                        refused: None,
                    }
                }
                Err(reason) => Applied {
                    changed: false,
                    refused: refuse(&mut parts.refused, name, version, reason),
                },
            }
        }
        Event::Delete(secret) => {
            let Some(name) = secret.metadata.name else {
                return Applied::default();
            };
            parts.refused.remove(&name);
            Applied {
                changed: parts.current.remove(&name).is_some(),
                refused: None,
            }
        }
        Event::Init => {
            parts.relist = Some(Relist::default());
            Applied::default()
        }
        Event::InitApply(secret) => {
            let Some((name, version, read)) = read_secret(secret) else {
                return Applied::default();
            };
            let relist = parts.relist.get_or_insert_with(Relist::default);
            match read {
                Ok(part) => {
                    relist.parts.insert(name, part);
                    Applied::default()
                }
                Err(reason) => {
                    // Still there but unreadable: it keeps what it held.
                    if let Some(previous) = parts.current.get(&name) {
                        relist.parts.insert(name.clone(), previous.clone());
                    }
                    let already = parts.refused.get(&name) == Some(&version);
                    relist.refused.insert(name.clone(), version);
                    Applied {
                        changed: false,
                        refused: (!already).then_some(Refusal {
                            secret: name,
                            reason,
                        }),
                    }
                }
            }
        }
        Event::InitDone => {
            let first = !parts.synced;
            parts.synced = true;
            let Some(relist) = parts.relist.take() else {
                return Applied {
                    changed: first,
                    refused: None,
                };
            };
            let changed = first || relist.parts != parts.current;
            parts.current = relist.parts;
            parts.refused = relist.refused;
            Applied {
                changed,
                refused: None,
            }
        }
    }
}

/// Records a refusal; `Some` unless this version was already reported.
fn refuse(
    refused: &mut BTreeMap<String, String>,
    name: String,
    version: String,
    reason: String,
) -> Option<Refusal> {
    if refused.get(&name) == Some(&version) {
        return None;
    }
    refused.insert(name.clone(), version);
    Some(Refusal {
        secret: name,
        reason,
    })
}

/// Name, resource version and part of a Secret; `None` without a name
/// (the API server always sets one).
fn read_secret(secret: Secret) -> Option<(String, String, Result<Part, String>)> {
    let name = secret.metadata.name?;
    let version = secret.metadata.resource_version.unwrap_or_default();
    let label = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(PART_LABEL));
    let read = match label.map(|value| (value, ConfigPart::parse(value))) {
        None => Err(format!("no label {PART_LABEL}")),
        Some((value, None)) => Err(format!("label {PART_LABEL}={value:?} is no known part")),
        Some((_, Some(part))) => {
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, bytes)| (key, bytes.0))
                .collect();
            layout::parse_part(part, &data).map_err(|error| describe(&error))
        }
    };
    Some((name, version, read))
}

/// The error without anything from the Secret's data.
fn describe(error: &ConfigError) -> String {
    match error {
        // serde_json quotes offending values, which may be credentials.
        ConfigError::Parse(error) => {
            let kind = match error.classify() {
                serde_json::error::Category::Io => "read",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "shape",
                serde_json::error::Category::Eof => "truncated",
            };
            format!(
                "data is not the expected JSON ({kind} error at line {}, column {})",
                error.line(),
                error.column()
            )
        }
        ConfigError::UnknownPlatform(_) => "unknown platform".to_owned(),
        other => other.to_string(),
    }
}

/// Lists the service's configuration Secrets in `namespace`, waiting up to
/// `timeout` for a complete list, and keeps watching them in a task until
/// `shutdown`. The configuration is assembled for `service`.
pub async fn watch(
    namespace: &str,
    instance: &str,
    service: &str,
    timeout: Duration,
    shutdown: CancellationToken,
) -> Result<ConfigWatcher, KubeConfigError> {
    let client = kube::Client::try_default()
        .await
        .map_err(KubeConfigError::Client)?;
    let selector = layout::config_selector(instance, service);
    let api = Api::<Secret>::namespaced(client, namespace);
    // Boxed: the watcher is !Unpin and moves into the follow task once listed.
    let mut stream = Box::pin(
        watcher::watcher(api, watcher::Config::default().labels(&selector)).default_backoff(),
    );
    let list_error = |cause: String, hint: &'static str| KubeConfigError::List {
        namespace: namespace.to_owned(),
        selector: selector.clone(),
        cause,
        hint,
    };

    let mut parts = Parts::default();
    let mut last_error: Option<String> = None;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    while !parts.synced() {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Err(KubeConfigError::Cancelled),
            _ = &mut deadline => {
                let last = last_error.unwrap_or_else(|| "the API server did not answer".to_owned());
                return Err(list_error(
                    format!("no complete list within {}s (last: {last})", timeout.as_secs()),
                    "",
                ));
            }
            next = stream.next() => next,
        };
        match next {
            Some(Ok(event)) => report(namespace, apply_event(&mut parts, event).refused),
            // Refused access does not fix itself while we wait; the pod
            // restarting with this error in its log is the quicker signal.
            Some(Err(error)) if matches!(status_code(&error), Some(401 | 403)) => {
                return Err(list_error(error.to_string(), RBAC_HINT));
            }
            Some(Err(error)) => {
                tracing::warn!(error = %error, namespace, selector = %selector, "configuration Secrets not listed yet, retrying");
                last_error = Some(error.to_string());
            }
            None => return Err(list_error("the watch ended".to_owned(), "")),
        }
    }

    let watcher = ConfigWatcher::fixed(layout::assemble(service, parts.parts()));
    tracing::info!(
        namespace,
        selector = %selector,
        secrets = parts.len(),
        tenants = watcher.current().tenants.len(),
        "service configuration loaded from Secrets"
    );
    tokio::spawn(follow(
        stream,
        parts,
        watcher.clone(),
        service.to_owned(),
        namespace.to_owned(),
        shutdown,
    ));
    Ok(watcher)
}

/// How long a change waits for the rest of its burst before the
/// configuration is assembled and published.
const PUBLISH_AFTER: Duration = Duration::from_millis(250);

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Applies the watch's events until `shutdown`, publishing the changes at
/// most [`PUBLISH_AFTER`] after they arrived.
async fn follow<S>(
    mut stream: S,
    mut parts: Parts,
    watcher: ConfigWatcher,
    service: String,
    namespace: String,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<Event<Secret>, watcher::Error>> + Unpin,
{
    let mut last_error: Option<String> = None;
    // When the changes seen so far get published: assembling copies every
    // Tenant, so a burst (thousands of Tenants applied together) is
    // gathered for up to PUBLISH_AFTER rather than assembled per Secret.
    let mut publish_at: Option<tokio::time::Instant> = None;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep_until_some(publish_at) => {
                publish_at = None;
                let config = layout::assemble(&service, parts.parts());
                let tenants = config.tenants.len();
                if watcher.replace(config) {
                    tracing::info!(
                        secrets = parts.len(),
                        tenants,
                        "service configuration reloaded"
                    );
                }
                continue;
            }
            next = stream.next() => next,
        };
        match next {
            Some(Ok(event)) => {
                last_error = None;
                let applied = apply_event(&mut parts, event);
                report(&namespace, applied.refused);
                if applied.changed && publish_at.is_none() {
                    publish_at = Some(tokio::time::Instant::now() + PUBLISH_AFTER);
                }
            }
            Some(Err(error)) => {
                // The backoff retries; say it once per distinct problem.
                let text = error.to_string();
                if last_error.as_deref() != Some(&text) {
                    tracing::error!(error = %text, namespace, "configuration Secrets watch failed, keeping the last configuration and retrying");
                    last_error = Some(text);
                }
            }
            None => {
                // kube's watcher never ends by itself; if it does, say so
                // rather than silently serving a configuration that no longer follows.
                tracing::error!(
                    namespace,
                    "configuration Secrets watch ended, the configuration no longer follows them"
                );
                return;
            }
        }
    }
}

fn report(namespace: &str, refused: Option<Refusal>) {
    if let Some(Refusal { secret, reason }) = refused {
        tracing::error!(
            secret = %secret,
            namespace,
            reason = %reason,
            "configuration Secret skipped, keeping what it held before"
        );
    }
}

/// HTTP status of an error the API server answered.
fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(error)
        | watcher::Error::WatchStartFailed(error)
        | watcher::Error::WatchFailed(error) => match error {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;
    use um_config::layout::TENANT_PART_KEY;
    use um_config::{Platform, TenantConfig, tenant_key};

    fn tenant(namespace: &str) -> TenantConfig {
        let key = tenant_key(namespace, "acme");
        TenantConfig::new(
            &key,
            "ACME",
            Platform::Telegram,
            format!("https://um.example.com/{key}"),
        )
    }

    fn secret(name: &str, version: &str, label: Option<&str>, key: &str, data: &[u8]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                resource_version: Some(version.to_owned()),
                labels: label
                    .map(|value| BTreeMap::from([(PART_LABEL.to_owned(), value.to_owned())])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(data.to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn tenant_secret(name: &str, version: &str, namespace: &str) -> Secret {
        let json = serde_json::to_vec(&tenant(namespace)).expect("serialises");
        secret(name, version, Some("tenant"), TENANT_PART_KEY, &json)
    }

    fn bad_secret(name: &str, version: &str) -> Secret {
        // A credential where the Tenant object belongs.
        secret(
            name,
            version,
            Some("tenant"),
            TENANT_PART_KEY,
            br#""hunter2""#,
        )
    }

    fn tenants(parts: &Parts) -> Vec<String> {
        layout::assemble("telegram", parts.parts())
            .tenants
            .into_keys()
            .collect()
    }

    fn list(parts: &mut Parts, secrets: Vec<Secret>) -> Applied {
        apply_event(parts, Event::Init);
        for secret in secrets {
            apply_event(parts, Event::InitApply(secret));
        }
        apply_event(parts, Event::InitDone)
    }

    #[test]
    fn first_list_is_complete_only_at_init_done() {
        let mut parts = Parts::default();
        assert_eq!(apply_event(&mut parts, Event::Init), Applied::default());
        let applied = apply_event(&mut parts, Event::InitApply(tenant_secret("a", "1", "a")));
        assert!(!applied.changed);
        assert!(!parts.synced());
        assert!(parts.is_empty());
        assert!(apply_event(&mut parts, Event::InitDone).changed);
        assert!(parts.synced());
        assert_eq!(tenants(&parts), ["a.acme"]);
        // An empty first list is a configuration too (no Tenants yet).
        let mut empty = Parts::default();
        assert!(list(&mut empty, vec![]).changed);
        assert!(empty.synced());
    }

    #[test]
    fn apply_and_delete_change_the_live_parts() {
        let mut parts = Parts::default();
        list(&mut parts, vec![tenant_secret("a", "1", "a")]);
        assert!(apply_event(&mut parts, Event::Apply(tenant_secret("b", "2", "b"))).changed);
        assert_eq!(tenants(&parts), ["a.acme", "b.acme"]);
        // The same content again (a label change, say) changes nothing.
        assert!(!apply_event(&mut parts, Event::Apply(tenant_secret("b", "3", "b"))).changed);
        assert!(apply_event(&mut parts, Event::Delete(tenant_secret("a", "4", "a"))).changed);
        assert_eq!(tenants(&parts), ["b.acme"]);
        assert!(!apply_event(&mut parts, Event::Delete(tenant_secret("a", "4", "a"))).changed);
    }

    #[test]
    fn relist_drops_secrets_that_vanished() {
        let mut parts = Parts::default();
        list(
            &mut parts,
            vec![tenant_secret("a", "1", "a"), tenant_secret("b", "2", "b")],
        );
        apply_event(&mut parts, Event::Init);
        apply_event(&mut parts, Event::InitApply(tenant_secret("a", "1", "a")));
        // Until the list is complete, the live parts stay as they were.
        assert_eq!(tenants(&parts), ["a.acme", "b.acme"]);
        assert!(apply_event(&mut parts, Event::InitDone).changed);
        assert_eq!(tenants(&parts), ["a.acme"]);
        // A relist that finds what we had changes nothing.
        assert!(!list(&mut parts, vec![tenant_secret("a", "1", "a")]).changed);
    }

    #[test]
    fn a_bad_secret_is_skipped_once_and_the_others_kept() {
        let mut parts = Parts::default();
        list(
            &mut parts,
            vec![tenant_secret("a", "1", "a"), tenant_secret("b", "2", "b")],
        );
        let applied = apply_event(&mut parts, Event::Apply(bad_secret("b", "3")));
        assert!(!applied.changed);
        let refusal = applied.refused.expect("refused");
        assert_eq!(refusal.secret, "b");
        assert!(!refusal.reason.contains("hunter2"), "{}", refusal.reason);
        // b keeps its last good configuration, a is untouched.
        assert_eq!(tenants(&parts), ["a.acme", "b.acme"]);
        // Reported once per version, relists included.
        assert_eq!(
            apply_event(&mut parts, Event::Apply(bad_secret("b", "3"))),
            Applied::default()
        );
        let relisted = list(
            &mut parts,
            vec![tenant_secret("a", "1", "a"), bad_secret("b", "3")],
        );
        assert_eq!(relisted, Applied::default());
        assert_eq!(tenants(&parts), ["a.acme", "b.acme"]);
        // A new bad version is reported again; a good one clears it.
        assert!(
            apply_event(&mut parts, Event::Apply(bad_secret("b", "4")))
                .refused
                .is_some()
        );
        assert!(apply_event(&mut parts, Event::Apply(tenant_secret("b", "5", "c"))).changed);
        assert_eq!(tenants(&parts), ["a.acme", "c.acme"]);
        // A bad Secret never seen good adds nothing.
        apply_event(&mut parts, Event::Init);
        apply_event(&mut parts, Event::InitApply(tenant_secret("a", "1", "a")));
        let applied = apply_event(&mut parts, Event::InitApply(bad_secret("d", "6")));
        assert!(applied.refused.is_some());
        assert!(apply_event(&mut parts, Event::InitDone).changed);
        assert_eq!(tenants(&parts), ["a.acme"]);
    }

    #[test]
    fn secrets_without_a_known_part_label_are_skipped() {
        let mut parts = Parts::default();
        let json = serde_json::to_vec(&tenant("x")).expect("serialises");
        let applied = list(
            &mut parts,
            vec![
                tenant_secret("a", "1", "a"),
                secret("x", "2", Some("everything"), TENANT_PART_KEY, &json),
            ],
        );
        assert!(applied.changed);
        assert_eq!(tenants(&parts), ["a.acme"]);
        let refusal = apply_event(
            &mut parts,
            Event::Apply(secret("y", "3", None, TENANT_PART_KEY, &json)),
        )
        .refused
        .expect("refused");
        assert!(refusal.reason.contains(PART_LABEL), "{}", refusal.reason);
        let refusal = apply_event(
            &mut parts,
            Event::Apply(secret("z", "4", Some("everything"), TENANT_PART_KEY, &json)),
        )
        .refused
        .expect("refused");
        assert!(refusal.reason.contains("everything"), "{}", refusal.reason);
        // A tenant part under another key names the key it lacks.
        let refusal = apply_event(
            &mut parts,
            Event::Apply(secret("w", "5", Some("tenant"), "other.json", &json)),
        )
        .refused
        .expect("refused");
        assert!(
            refusal.reason.contains(TENANT_PART_KEY),
            "{}",
            refusal.reason
        );
        assert_eq!(tenants(&parts), ["a.acme"]);
    }
}
