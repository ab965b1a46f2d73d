//! Status conditions, built by small pure functions from what a reconcile
//! observed. Messages say what to do; none carries a credential (they are
//! built from field paths, object names and Genesys' error text only).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use um_crds::conditions::{
    CONNECTOR_AVAILABLE, CREDENTIALS_RESOLVED, DEFAULT_CONFLICT, FALSE, INTEGRATION_REGISTERED,
    READY, RECONCILED, STORAGE_RESOLVED, SUPPORTED, TRUE, UNKNOWN,
};

use crate::genesys::{EnsureOutcome, GenesysError, LoginError};
use crate::model::Unsupported;
use crate::resolve::ResolveError;

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        // Replaced by `merge`, which knows whether the status changed.
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// The apiserver's limit on an Event's note (events.k8s.io/v1), in bytes;
/// condition messages are held to it too, so what `kubectl describe`
/// shows stays readable.
pub const NOTE_LIMIT: usize = 1024;

/// `text` cut to at most `limit` bytes at a character boundary, marked
/// with an ellipsis when cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    const MARK: &str = "…";
    let mut end = limit.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

/// Reconciled: True when every rendered object was applied, else False with
/// what the apiserver answered for the object it refused.
pub fn reconciled(refusal: Option<&str>, generation: Option<i64>) -> Condition {
    match refusal {
        None => condition(
            RECONCILED,
            TRUE,
            "Applied",
            "every rendered object is applied",
            generation,
        ),
        Some(refusal) => condition(
            RECONCILED,
            FALSE,
            "ApplyFailed",
            cut(refusal, NOTE_LIMIT),
            generation,
        ),
    }
}

/// Sets `lastTransitionTime`: kept from `previous` when the status of that
/// type did not change, `now` otherwise.
pub fn merge(previous: &[Condition], next: Vec<Condition>, now: Timestamp) -> Vec<Condition> {
    next.into_iter()
        .map(|mut condition| {
            condition.last_transition_time = previous
                .iter()
                .find(|old| old.type_ == condition.type_ && old.status == condition.status)
                .map(|old| old.last_transition_time.clone())
                .unwrap_or(Time(now));
            condition
        })
        .collect()
}

/// Conditions worth an Event: each whose status or reason changed and,
/// on a condition's first appearance, only the bad ones and the
/// milestones ([`MILESTONES`]). A new Tenant would otherwise announce
/// seven good conditions at once: seven Event writes per Tenant, most of
/// the operator's writes when thousands arrive together. An unchanged
/// reconcile publishes none.
pub fn transitions<'a>(previous: &[Condition], next: &'a [Condition]) -> Vec<&'a Condition> {
    next.iter()
        .filter(
            |condition| match previous.iter().find(|old| old.type_ == condition.type_) {
                Some(old) => old.status != condition.status || old.reason != condition.reason,
                None => !is_good(condition) || MILESTONES.contains(&condition.type_.as_str()),
            },
        )
        .collect()
}

/// Conditions whose first good state is news on its own.
pub const MILESTONES: [&str; 2] = [READY, INTEGRATION_REGISTERED];

/// Whether a condition reports things as they should be (a conflict is
/// good when False).
pub fn is_good(condition: &Condition) -> bool {
    if condition.type_ == DEFAULT_CONFLICT {
        condition.status == FALSE
    } else {
        condition.status == TRUE
    }
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == TRUE)
}

/// Whether this version serves a Tenant: its platform and its CX side.
pub fn tenant_supported(tenant: &um_crds::TenantSpec, generation: Option<i64>) -> Condition {
    match crate::model::unsupported(tenant) {
        Some(Unsupported::Platform(platform)) => condition(
            SUPPORTED,
            FALSE,
            "PlatformNotSupported",
            format!(
                "{} (spec.messaging.{}) is not implemented in this version of Universal Messaging; nothing is deployed for this Tenant",
                platform.display_name(),
                platform.as_str()
            ),
            generation,
        ),
        Some(Unsupported::Cx(key)) => condition(
            SUPPORTED,
            FALSE,
            "CxNotSupported",
            format!(
                "spec.cx.{key} is not implemented in this version of Universal Messaging (only genesysCloud is); nothing is deployed for this Tenant"
            ),
            generation,
        ),
        None => condition(
            SUPPORTED,
            TRUE,
            "Supported",
            format!(
                "{} with Genesys Cloud is served",
                tenant.platform().display_name()
            ),
            generation,
        ),
    }
}

/// Storages: the providers are not implemented yet.
pub fn storage_supported(generation: Option<i64>) -> Condition {
    condition(
        SUPPORTED,
        FALSE,
        "NotImplemented",
        "attachment storage is not implemented in this version of Universal Messaging: no service uses this Storage and its credentials are handed to none; attachments go through the connectors' signed URLs",
        generation,
    )
}

pub fn credentials_resolved(errors: &[ResolveError], generation: Option<i64>) -> Condition {
    match errors.first() {
        None => condition(
            CREDENTIALS_RESOLVED,
            TRUE,
            "Resolved",
            "every Secret reference resolved",
            generation,
        ),
        Some(first) => {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            condition(
                CREDENTIALS_RESOLVED,
                FALSE,
                first.reason(),
                format!(
                    "{}; create or fix the Secret (the Tenant heals without a restart)",
                    all.join("; ")
                ),
                generation,
            )
        }
    }
}

/// Where the Genesys Cloud integration stands after this reconcile.
pub enum IntegrationState<'a> {
    /// cx is not genesysCloud.
    NotApplicable,
    /// Cannot be attempted before the credentials resolve.
    WaitingForCredentials,
    Done(&'a EnsureOutcome),
    Failed(&'a GenesysError),
}

/// The IntegrationRegistered reason for a client error.
pub fn integration_failure_reason(err: &GenesysError) -> &'static str {
    if err.rate_limited().is_some() {
        return "RateLimited";
    }
    match err {
        GenesysError::Login(LoginError::InvalidCredentials { .. }) => "InvalidCredentials",
        GenesysError::CreateFailed { .. } | GenesysError::Create { .. } => "CreateFailed",
        GenesysError::CreatePending { .. } => "Pending",
        _ => "RequestFailed",
    }
}

pub fn integration_registered(state: IntegrationState<'_>, generation: Option<i64>) -> Condition {
    match state {
        IntegrationState::NotApplicable => condition(
            INTEGRATION_REGISTERED,
            TRUE,
            "NotApplicable",
            "cx is not genesysCloud: no Open Messaging integration to register",
            generation,
        ),
        IntegrationState::WaitingForCredentials => condition(
            INTEGRATION_REGISTERED,
            FALSE,
            "Pending",
            "waiting for the Genesys Cloud credentials to resolve (see CredentialsResolved)",
            generation,
        ),
        IntegrationState::Done(outcome) => {
            let message = match outcome {
                EnsureOutcome::Created { id } => format!("Open Messaging integration {id} created"),
                EnsureOutcome::Adopted { id } => {
                    format!("existing Open Messaging integration {id} adopted")
                }
                EnsureOutcome::Updated { id, fields } => {
                    format!(
                        "Open Messaging integration {id} updated ({})",
                        fields.join(", ")
                    )
                }
                EnsureOutcome::Unchanged { id } => {
                    format!("Open Messaging integration {id} is up to date")
                }
            };
            condition(
                INTEGRATION_REGISTERED,
                TRUE,
                "Registered",
                message,
                generation,
            )
        }
        IntegrationState::Failed(err) => {
            let reason = integration_failure_reason(err);
            let hint = match reason {
                "InvalidCredentials" => "",
                "RateLimited" => "; the operator retries after the delay Genesys asked for",
                "Pending" => "; the operator keeps polling createStatus",
                _ => "; the operator retries with back-off",
            };
            condition(
                INTEGRATION_REGISTERED,
                FALSE,
                reason,
                format!("{err}{hint}"),
                generation,
            )
        }
    }
}

/// From the connector Deployment's `Available` condition.
pub fn connector_available(
    deployment_name: &str,
    deployment: Option<&Deployment>,
    disabled: bool,
    generation: Option<i64>,
) -> Condition {
    if disabled {
        return condition(
            CONNECTOR_AVAILABLE,
            FALSE,
            "Unavailable",
            format!(
                "the {deployment_name} connector is disabled in the operator configuration (services.<name>.enabled)"
            ),
            generation,
        );
    }
    let Some(deployment) = deployment else {
        return condition(
            CONNECTOR_AVAILABLE,
            FALSE,
            "Progressing",
            format!("Deployment {deployment_name} is being created"),
            generation,
        );
    };
    let status = deployment.status.as_ref();
    let available = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Available"));
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    match available {
        Some(c) if c.status == TRUE => condition(
            CONNECTOR_AVAILABLE,
            TRUE,
            "Available",
            format!("Deployment {deployment_name} is available ({ready} ready replicas)"),
            generation,
        ),
        Some(c) if c.status == FALSE => condition(
            CONNECTOR_AVAILABLE,
            FALSE,
            "Unavailable",
            format!(
                "Deployment {deployment_name} is not available: {}",
                c.message
                    .clone()
                    .unwrap_or_else(|| c.reason.clone().unwrap_or_default())
            ),
            generation,
        ),
        _ => condition(
            CONNECTOR_AVAILABLE,
            FALSE,
            "Progressing",
            format!("Deployment {deployment_name} has no available replica yet"),
            generation,
        ),
    }
}

/// Where the Tenant's attachment storage stands.
pub enum StorageState<'a> {
    /// spec.storageRef names a Storage that resolved.
    Named(&'a str),
    /// No storageRef; the namespace's default Storage is used.
    Default(&'a str),
    /// No storageRef and no default Storage.
    NoStorage,
    NotFound(&'a str),
    NotReady(&'a str),
}

pub fn storage_resolved(state: StorageState<'_>, generation: Option<i64>) -> Condition {
    match state {
        // True: the Tenant works without it; the words say it is not used.
        StorageState::Named(name) => condition(
            STORAGE_RESOLVED,
            TRUE,
            "StorageNotImplemented",
            format!(
                "Storage {name} exists but is not used: attachment storage is not implemented in this version; attachments go through the connectors' signed URLs"
            ),
            generation,
        ),
        StorageState::Default(name) => condition(
            STORAGE_RESOLVED,
            TRUE,
            "StorageNotImplemented",
            format!(
                "the namespace's default Storage {name} is not used: attachment storage is not implemented in this version; attachments go through the connectors' signed URLs"
            ),
            generation,
        ),
        StorageState::NoStorage => condition(
            STORAGE_RESOLVED,
            TRUE,
            "NoStorage",
            "no storageRef and no default Storage: attachments are passed on by their platform URL only",
            generation,
        ),
        StorageState::NotFound(name) => condition(
            STORAGE_RESOLVED,
            FALSE,
            "StorageNotFound",
            format!("spec.storageRef names Storage {name}, which does not exist in this namespace"),
            generation,
        ),
        StorageState::NotReady(name) => condition(
            STORAGE_RESOLVED,
            FALSE,
            "StorageNotReady",
            format!("Storage {name} is not ready; see its conditions"),
            generation,
        ),
    }
}

/// Storage: whether another Storage of the namespace is also the default.
pub fn default_conflict(others: &[String], generation: Option<i64>) -> Condition {
    if others.is_empty() {
        condition(
            DEFAULT_CONFLICT,
            FALSE,
            "NoConflict",
            "no other Storage of the namespace is marked default",
            generation,
        )
    } else {
        condition(
            DEFAULT_CONFLICT,
            TRUE,
            "MultipleDefaults",
            format!(
                "Storages {} are also marked default; exactly one may be (set spec.default: false on the others)",
                others.join(", ")
            ),
            generation,
        )
    }
}

/// Ready summarises the others: True when each is in its good state
/// (DefaultConflict's good state is False).
pub fn ready(others: &[Condition], generation: Option<i64>) -> Condition {
    let blocking: Vec<String> = others
        .iter()
        .filter(|c| {
            let good = if c.type_ == DEFAULT_CONFLICT {
                FALSE
            } else {
                TRUE
            };
            c.status != good
        })
        .map(|c| format!("{} ({}): {}", c.type_, c.reason, c.message))
        .collect();
    // What this version cannot serve is the reason, not a generic NotReady:
    // it is what an administrator must know first.
    let unsupported = others
        .iter()
        .find(|c| c.type_ == SUPPORTED && c.status != TRUE);
    match unsupported {
        _ if blocking.is_empty() => {
            condition(READY, TRUE, "Ready", "all conditions are met", generation)
        }
        Some(c) => condition(READY, FALSE, &c.reason, blocking.join("; "), generation),
        None => condition(READY, FALSE, "NotReady", blocking.join("; "), generation),
    }
}

/// A condition whose state could not be determined in this reconcile.
pub fn unknown(
    type_: &str,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    condition(type_, UNKNOWN, reason, message, generation)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

    use super::*;
    use crate::genesys::ApiFailure;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn an_unsupported_tenant_is_not_ready_with_the_reason_that_says_why() {
        use crate::model::tests::{telegram_genesys, tenant};
        let served = telegram_genesys("acme");
        assert_eq!(tenant_supported(&served.spec, None).status, TRUE);
        let preview = crate::model::tests::preview_tenant("p");
        let supported = tenant_supported(&preview.spec, Some(1));
        assert_eq!(
            (supported.status.as_str(), supported.reason.as_str()),
            ("False", "PlatformNotSupported")
        );
        let name = preview.spec.platform().display_name();
        assert!(supported.message.contains(name), "{}", supported.message);
        let summary = ready(&[supported, credentials_resolved(&[], Some(1))], Some(1));
        assert_eq!(
            (summary.status.as_str(), summary.reason.as_str()),
            ("False", "PlatformNotSupported")
        );
        let pure_connect = tenant(
            "pc",
            serde_json::to_value(&served.spec.messaging).unwrap(),
            serde_json::json!({"pureConnect": {"primaryUrl": "https://cic.example.com", "target": {"name": "Support", "type": "Workgroup"}}}),
        );
        assert_eq!(
            tenant_supported(&pure_connect.spec, None).reason,
            "CxNotSupported"
        );
        let storage = ready(&[storage_supported(None)], None);
        assert_eq!(storage.reason, "NotImplemented");
    }

    #[test]
    fn missing_secret_names_secret_and_field() {
        let errors = vec![ResolveError::SecretNotFound {
            field: "spec.messaging.telegram.botToken".into(),
            namespace: "shop".into(),
            name: "acme-telegram".into(),
        }];
        let c = credentials_resolved(&errors, Some(3));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "SecretNotFound")
        );
        assert!(
            c.message.contains("acme-telegram")
                && c.message.contains("spec.messaging.telegram.botToken")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(credentials_resolved(&[], None).reason, "Resolved");
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let mut first = credentials_resolved(&[], None);
        first.last_transition_time = Time(at(100));
        let merged = merge(
            &[first.clone()],
            vec![credentials_resolved(&[], None)],
            at(200),
        );
        assert_eq!(merged[0].last_transition_time, Time(at(100)));
        let failing = vec![ResolveError::SecretNotFound {
            field: "f".into(),
            namespace: "n".into(),
            name: "s".into(),
        }];
        let merged = merge(
            &[first],
            vec![credentials_resolved(&failing, None)],
            at(200),
        );
        assert_eq!(merged[0].last_transition_time, Time(at(200)));
    }

    #[test]
    fn transitions_only_on_change() {
        let before = vec![credentials_resolved(&[], None)];
        assert!(transitions(&before, &[credentials_resolved(&[], None)]).is_empty());
        let failing = [ResolveError::SecretKeyNotFound {
            field: "f".into(),
            namespace: "n".into(),
            name: "s".into(),
            key: "k".into(),
        }];
        let after = [credentials_resolved(&failing, None)];
        assert_eq!(transitions(&before, &after).len(), 1);
        assert!(
            transitions(&[], &before).is_empty(),
            "a first good state is no news"
        );
        assert_eq!(transitions(&[], &after).len(), 1, "a first bad state is");
        let registered = condition(
            INTEGRATION_REGISTERED,
            TRUE,
            "Registered",
            String::new(),
            None,
        );
        assert_eq!(transitions(&[], &[registered]).len(), 1, "a milestone is");
    }

    #[test]
    fn integration_reasons() {
        let rate = GenesysError::Create {
            name: "n".into(),
            cause: ApiFailure::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
        };
        let c = integration_registered(IntegrationState::Failed(&rate), None);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "RateLimited")
        );
        assert!(
            c.message.contains("rate limited (HTTP 429)"),
            "{}",
            c.message
        );
        assert!(
            !c.message.contains("3s"),
            "no delay in the message: a new Retry-After must not rewrite the status: {}",
            c.message
        );
        let failed = GenesysError::CreateFailed {
            id: "i".into(),
            message: "bad webhook url".into(),
        };
        let c = integration_registered(IntegrationState::Failed(&failed), None);
        assert_eq!(c.reason, "CreateFailed");
        assert!(c.message.contains("bad webhook url"));
        let created = EnsureOutcome::Created { id: "abc".into() };
        let c = integration_registered(IntegrationState::Done(&created), None);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Registered")
        );
        assert_eq!(
            integration_registered(IntegrationState::NotApplicable, None).reason,
            "NotApplicable"
        );
        assert_eq!(
            integration_registered(IntegrationState::WaitingForCredentials, None).reason,
            "Pending"
        );
    }

    fn deployment(available: Option<&str>) -> Deployment {
        Deployment {
            status: Some(DeploymentStatus {
                conditions: available.map(|status| {
                    vec![DeploymentCondition {
                        type_: "Available".into(),
                        status: status.into(),
                        message: Some("Deployment does not have minimum availability.".into()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ready_replicas: Some(1),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        }
    }

    #[test]
    fn connector_availability_follows_the_deployment() {
        assert_eq!(
            connector_available("um-telegram", Some(&deployment(Some("True"))), false, None).reason,
            "Available"
        );
        let down =
            connector_available("um-telegram", Some(&deployment(Some("False"))), false, None);
        assert_eq!(down.reason, "Unavailable");
        assert!(down.message.contains("minimum availability"));
        assert_eq!(
            connector_available("um-telegram", Some(&deployment(None)), false, None).reason,
            "Progressing"
        );
        assert_eq!(
            connector_available("um-telegram", None, false, None).reason,
            "Progressing"
        );
        assert_eq!(
            connector_available("um-telegram", None, true, None).reason,
            "Unavailable"
        );
    }

    #[test]
    fn ready_names_what_is_not_ready() {
        let ok = vec![
            credentials_resolved(&[], None),
            integration_registered(IntegrationState::NotApplicable, None),
        ];
        assert_eq!(ready(&ok, None).status, "True");
        let mut not_ok = ok.clone();
        not_ok.push(connector_available("um-line", None, false, None));
        let r = ready(&not_ok, None);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "NotReady")
        );
        assert!(
            r.message.contains("ConnectorAvailable (Progressing)"),
            "{}",
            r.message
        );
        let conflict = vec![default_conflict(&["other".into()], None)];
        assert_eq!(ready(&conflict, None).status, "False");
        assert_eq!(ready(&[default_conflict(&[], None)], None).status, "True");
    }
}
