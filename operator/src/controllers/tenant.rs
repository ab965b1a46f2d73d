//! Tenant reconciler: resolve credentials, register the Genesys Cloud
//! integration, render and apply the namespace's shared objects, report
//! conditions and Events; on deletion (finalizer) delete the integration
//! and re-render the namespace without the Tenant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ObjectReference, Secret as KubeSecret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use um_crds::{NotifierDestination, Storage, Tenant, TenantStatus};

use super::namespace::{NamespaceInputs, apply_namespace, load_inputs, namespace_state};
use super::{Context, ReconcileError, error_policy, resync_after, write_status};
use crate::conditions::{self, IntegrationState, StorageState};
use crate::config::{GCLOUDCX_SERVICE, OperatorConfig};
use crate::genesys::{DeleteOutcome, EnsureOutcome, GenesysError, LoginError};
use crate::model::{
    openmessaging_webhook_url, resolve_tenant, tenant_links, tenant_secret_names, webhook_url,
};
use crate::render::{MANAGED_BY, object_name};

/// Held by Tenants with a Genesys Cloud integration until it is deleted.
pub const FINALIZER: &str = "messaging.universal-messaging.io/integration";
const KIND: &str = "Tenant";
/// Annotation (value `"true"`) that lets a Tenant be deleted without
/// deleting its Open Messaging integration in Genesys Cloud: for an
/// organisation that is gone or credentials that were revoked.
pub const SKIP_REMOTE_CLEANUP: &str = "messaging.universal-messaging.io/skip-remote-cleanup";

/// How long a failing remote cleanup holds a deleted Tenant before the
/// operator gives up on it, with a Warning Event.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(60 * 60);

/// Fallback re-check of a Tenant that is not Ready.
const NOT_READY_RECHECK: Duration = Duration::from_secs(120);

/// Re-check while Genesys is still creating the integration.
const PENDING_RECHECK: Duration = Duration::from_secs(5);

/// One reconcile, in a `reconcile` span naming the Tenant, so every line
/// it logs (and the connectors' lines, which carry the same key) can be
/// followed per Tenant.
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!(
        "reconcile",
        kind = KIND,
        tenant = %tenant.tenant_key(),
        generation = tenant.metadata.generation.unwrap_or_default()
    );
    tracing::Instrument::instrument(reconcile_in_span(tenant, ctx), span).await
}

async fn reconcile_in_span(
    tenant: Arc<Tenant>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx
        .config
        .watches_namespace(tenant.namespace().as_deref().unwrap_or_default())
    {
        // Another installation serves that namespace.
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_started(KIND);
    let namespace = tenant
        .namespace()
        .ok_or(ReconcileError::NoNamespace { kind: KIND })?;
    let api: Api<Tenant> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = tenant.finalizers().iter().any(|f| f == FINALIZER);
    let action = if tenant.spec.cx.genesys_cloud().is_some() || has_finalizer {
        let name = tenant.name_any();
        finalizer(&api, FINALIZER, tenant, |event| async {
            match event {
                FinalizerEvent::Apply(tenant) => apply_tenant(tenant, &ctx).await,
                FinalizerEvent::Cleanup(tenant) => cleanup_tenant(tenant, &ctx).await,
            }
        })
        .await
        .map_err(|source| ReconcileError::Finalizer {
            name,
            source: Box::new(source),
        })?
    } else if tenant.metadata.deletion_timestamp.is_some() {
        // No finalizer: the garbage collector drops this Tenant's owner
        // references; the Deployment watch then re-renders for the others.
        Action::await_change()
    } else {
        apply_tenant(tenant.clone(), &ctx).await?
    };
    Ok(action)
}

fn tenants_of(store: &Store<Tenant>, namespace: &str) -> Vec<Arc<Tenant>> {
    store
        .state()
        .into_iter()
        .filter(|t| t.namespace().as_deref() == Some(namespace))
        .collect()
}

/// What the integration step produced.
enum IntegrationStep {
    NotApplicable,
    WaitingForCredentials,
    Done(EnsureOutcome),
    Failed(GenesysError),
}

async fn apply_tenant(tenant: Arc<Tenant>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let generation = tenant.metadata.generation;
    let uid = tenant.uid().unwrap_or_default();
    let key = tenant.tenant_key();
    let previous_status = tenant.status.clone().unwrap_or_default();
    let known_id = previous_status.integration_id.clone();

    let inputs = load_inputs(ctx, &namespace).await?;
    let resolved = resolve_tenant(&ctx.config, &tenant, &inputs.secrets, known_id.clone());
    let credentials = conditions::credentials_resolved(
        resolved.as_ref().err().map(Vec::as_slice).unwrap_or(&[]),
        generation,
    );
    let supported = conditions::tenant_supported(&tenant.spec, generation);
    if supported.status != um_crds::conditions::TRUE {
        return report_unsupported(ctx, &tenant, supported, credentials).await;
    }

    let step = register_integration(ctx, &key, &tenant, &resolved, known_id.as_deref()).await;
    let integration_id = step.integration_id(known_id.as_deref());

    // Render the namespace with this Tenant's freshest integration id.
    let tenants = ensure_present(ctx.tenants(), &namespace, &tenant);
    let ids = BTreeMap::from([(uid, integration_id.clone())]);
    let state = namespace_state(&ctx.config, &namespace, &tenants, &inputs, &ids);
    // A refused object (quota, admission policy, conflict) is reported in
    // status and an Event before the reconcile fails and backs off.
    let (deployments, refused) = match apply_namespace(ctx, &state).await {
        Ok(deployments) => (deployments, None),
        Err(err) if err.refusal().is_some() => (BTreeMap::new(), Some(err)),
        Err(err) => return Err(err),
    };
    let reconciled = conditions::reconciled(
        refused
            .as_ref()
            .and_then(ReconcileError::refusal)
            .as_deref(),
        generation,
    );

    let integration = conditions::integration_registered(
        match &step {
            IntegrationStep::NotApplicable => IntegrationState::NotApplicable,
            IntegrationStep::WaitingForCredentials => IntegrationState::WaitingForCredentials,
            IntegrationStep::Done(outcome) => IntegrationState::Done(outcome),
            IntegrationStep::Failed(err) => IntegrationState::Failed(err),
        },
        generation,
    );
    let connector = connector_condition(ctx, &tenant, &deployments, generation);
    let storage = storage_condition(&tenant, &inputs, generation);
    let mut next = vec![
        supported,
        credentials,
        integration,
        reconciled,
        connector,
        storage,
    ];
    next.push(conditions::ready(&next, generation));
    let previous = previous_status.conditions.clone();
    let next = conditions::merge(&previous, next, Timestamp::now());

    let status = tenant_status(&ctx.config, &tenant, next.clone(), integration_id.clone());
    write_status::<Tenant, _>(&ctx.client, tenant.as_ref(), &status).await?;

    let reference = tenant.object_ref(&());
    ctx.publish_transitions(&reference, &previous, &next).await;
    if let IntegrationStep::Done(EnsureOutcome::Updated { id, fields }) = &step {
        let note = format!(
            "Open Messaging integration {id} updated: {}",
            fields.join(", ")
        );
        ctx.publish(
            &reference,
            EventType::Normal,
            "IntegrationUpdated",
            "UpdateIntegration",
            note,
        )
        .await;
    }
    if let Some(err) = refused {
        return Err(err);
    }
    next_action(ctx, &tenant, step, &next)
}

/// Step: the Open Messaging integration exists and is current (once the
/// credentials resolve).
async fn register_integration(
    ctx: &Context,
    key: &str,
    tenant: &Tenant,
    resolved: &Result<crate::model::ResolvedTenant, Vec<crate::resolve::ResolveError>>,
    known_id: Option<&str>,
) -> IntegrationStep {
    match (resolved, tenant.spec.cx.genesys_cloud()) {
        (_, None) => IntegrationStep::NotApplicable,
        (Ok(resolved), Some(_)) => match resolved.genesys.as_ref() {
            Some(access) => {
                let client = ctx.genesys_client(key, access);
                match client
                    .ensure_integration(known_id, &access.integration)
                    .await
                {
                    Ok(outcome) => IntegrationStep::Done(outcome),
                    Err(err) => IntegrationStep::Failed(err),
                }
            }
            // resolve_tenant always gives genesysCloud Tenants their access.
            None => IntegrationStep::WaitingForCredentials,
        },
        (Err(_), Some(_)) => IntegrationStep::WaitingForCredentials,
    }
}

impl IntegrationStep {
    /// The integration id the status records after this step.
    fn integration_id(&self, known_id: Option<&str>) -> Option<String> {
        match self {
            IntegrationStep::Done(outcome) => Some(outcome.id().to_owned()),
            IntegrationStep::NotApplicable => None,
            IntegrationStep::Failed(GenesysError::CreateFailed { .. }) => None,
            IntegrationStep::Failed(GenesysError::CreatePending { id, .. }) => Some(id.clone()),
            _ => known_id.map(str::to_owned),
        }
    }
}

/// Step: when to look again, from the integration step and Ready.
// The reconcile's own error type (the async steps return it too; clippy
// only measures it on synchronous functions).
#[allow(clippy::result_large_err)]
fn next_action(
    ctx: &Context,
    tenant: &Tenant,
    step: IntegrationStep,
    conditions: &[Condition],
) -> Result<Action, ReconcileError> {
    match step {
        IntegrationStep::Failed(err) => match err {
            GenesysError::CreatePending { .. } => Ok(Action::requeue(PENDING_RECHECK)),
            GenesysError::Login(LoginError::InvalidCredentials { .. }) => {
                // Nothing changes until someone fixes the Secret, which the
                // Secret watch notices; retry slowly meanwhile.
                ctx.forget_genesys_client(&tenant.tenant_key());
                Err(ReconcileError::Genesys(err))
            }
            other => Err(ReconcileError::Genesys(other)),
        },
        _ => {
            ctx.record_success(&format!(
                "{KIND}/{}/{}",
                tenant.namespace().unwrap_or_default(),
                tenant.name_any()
            ));
            let ready = conditions::is_true(conditions, um_crds::conditions::READY);
            // Not Ready: the watches bring what usually fixes it (a Secret,
            // a Deployment becoming available); the recheck is a fallback.
            Ok(Action::requeue(if ready {
                resync_after(tenant.uid().as_deref())
            } else {
                NOT_READY_RECHECK
            }))
        }
    }
}

/// A Tenant this version cannot serve: nothing is rendered or registered
/// for it (the namespace rendering leaves it out); its status says why.
async fn report_unsupported(
    ctx: &Context,
    tenant: &Tenant,
    supported: Condition,
    credentials: Condition,
) -> Result<Action, ReconcileError> {
    let generation = tenant.metadata.generation;
    let mut next = vec![supported, credentials];
    next.push(conditions::ready(&next, generation));
    let previous = tenant
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let next = conditions::merge(&previous, next, Timestamp::now());
    let known_id = tenant
        .status
        .as_ref()
        .and_then(|s| s.integration_id.clone());
    let status = tenant_status(&ctx.config, tenant, next.clone(), known_id.clone());
    write_status::<Tenant, _>(&ctx.client, tenant, &status).await?;
    let reference = tenant.object_ref(&());
    ctx.publish_transitions(&reference, &previous, &next).await;
    if let (None, Some(id)) = (tenant.spec.cx.genesys_cloud(), &known_id) {
        // Its Genesys credentials left the spec with genesysCloud itself.
        let note = format!(
            "spec.cx is no longer genesysCloud: Open Messaging integration {id} was not deleted; delete it in Genesys Cloud"
        );
        integration_left_behind(ctx, &reference, note).await;
    }
    // Only a spec change can make it servable: no periodic requeue.
    Ok(Action::await_change())
}

/// The status a reconcile writes (pure): what was observed, the URLs an
/// administrator needs, and the pages the connector serves for them.
fn tenant_status(
    config: &OperatorConfig,
    tenant: &Tenant,
    conditions: Vec<Condition>,
    integration_id: Option<String>,
) -> TenantStatus {
    TenantStatus {
        observed_generation: tenant.metadata.generation,
        conditions,
        platform: Some(tenant.spec.messaging.key().to_owned()),
        cx: Some(tenant.spec.cx.key().to_owned()),
        webhook_url: Some(webhook_url(config, tenant)),
        open_messaging_webhook_url: tenant
            .spec
            .cx
            .genesys_cloud()
            .map(|_| openmessaging_webhook_url(config, tenant)),
        integration_id,
        links: tenant_links(config, tenant),
    }
}

/// The store may not have caught up with a Tenant created a moment ago.
fn ensure_present(
    store: &Store<Tenant>,
    namespace: &str,
    tenant: &Arc<Tenant>,
) -> Vec<Arc<Tenant>> {
    let mut tenants = tenants_of(store, namespace);
    let uid = tenant.uid();
    tenants.retain(|t| t.uid() != uid);
    tenants.push(tenant.clone());
    tenants
}

fn connector_condition(
    ctx: &Context,
    tenant: &Tenant,
    deployments: &BTreeMap<String, Deployment>,
    generation: Option<i64>,
) -> Condition {
    let mut services = vec![tenant.spec.platform().as_str().to_owned()];
    if tenant.spec.cx.genesys_cloud().is_some() {
        services.push(GCLOUDCX_SERVICE.to_owned());
    }
    let mut conditions = services.into_iter().map(|service| {
        let name = object_name(&service);
        conditions::connector_available(
            &name,
            deployments.get(&name),
            !ctx.config.service_enabled(&service),
            generation,
        )
    });
    // The platform connector's condition is always there; the first that is
    // not available wins, else the platform connector's.
    let platform = conditions
        .next()
        .unwrap_or_else(|| conditions::connector_available("", None, false, generation));
    if platform.status != um_crds::conditions::TRUE {
        return platform;
    }
    conditions
        .find(|c| c.status != um_crds::conditions::TRUE)
        .unwrap_or(platform)
}

fn storage_condition(
    tenant: &Tenant,
    inputs: &NamespaceInputs,
    generation: Option<i64>,
) -> Condition {
    let usable =
        |storage: &Storage| crate::model::resolve_storage(storage, &inputs.secrets).is_ok();
    let state = match &tenant.spec.storage_ref {
        Some(reference) => match inputs
            .storages
            .iter()
            .find(|s| s.name_any() == reference.name)
        {
            None => StorageState::NotFound(&reference.name),
            Some(storage) if !usable(storage) => StorageState::NotReady(&reference.name),
            Some(_) => StorageState::Named(&reference.name),
        },
        None => match inputs.storages.iter().find(|s| s.spec.default && usable(s)) {
            Some(storage) => {
                StorageState::Default(storage.metadata.name.as_deref().unwrap_or_default())
            }
            None => StorageState::NoStorage,
        },
    };
    conditions::storage_resolved(state, generation)
}

/// Deletion: the integration goes first (404 counts as gone), then the
/// namespace is re-rendered without this Tenant. The remote cleanup is
/// skipped when the Tenant carries [`SKIP_REMOTE_CLEANUP`], and given up
/// (with a Warning Event) once it has failed for [`CLEANUP_DEADLINE`], so a
/// Genesys organisation that is gone cannot hold the namespace forever.
async fn cleanup_tenant(tenant: Arc<Tenant>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let key = tenant.tenant_key();
    let reference = tenant.object_ref(&());
    let inputs = load_inputs(ctx, &namespace).await?;
    let known_id = tenant
        .status
        .as_ref()
        .and_then(|s| s.integration_id.clone());
    let id_text = known_id.as_deref().unwrap_or("(id unknown)").to_owned();
    if tenant.spec.cx.genesys_cloud().is_some() {
        if skips_remote_cleanup(&tenant) {
            let note = format!(
                "annotation {SKIP_REMOTE_CLEANUP} is set: the Open Messaging integration {id_text} was not deleted; delete it in Genesys Cloud"
            );
            integration_left_behind(ctx, &reference, note).await;
        } else {
            match delete_integration(ctx, &tenant, &inputs, known_id).await {
                Ok(()) => {}
                Err(err) if cleanup_overdue(&tenant, Timestamp::now()) => {
                    let note = format!(
                        "gave up deleting the Open Messaging integration {id_text} after {} min: {err}; delete it in Genesys Cloud",
                        CLEANUP_DEADLINE.as_secs() / 60
                    );
                    ctx.publish(
                        &reference,
                        EventType::Warning,
                        "CleanupAbandoned",
                        "DeleteIntegration",
                        note,
                    )
                    .await;
                }
                Err(err) => return Err(err),
            }
        }
    }
    ctx.forget_genesys_client(&key);
    let tenants: Vec<Arc<Tenant>> = tenants_of(ctx.tenants(), &namespace)
        .into_iter()
        .filter(|t| t.uid() != tenant.uid())
        .collect();
    let state = namespace_state(&ctx.config, &namespace, &tenants, &inputs, &BTreeMap::new());
    apply_namespace(ctx, &state).await?;
    Ok(Action::await_change())
}

/// Step of deletion: the Tenant's integration is deleted in Genesys Cloud
/// (an Event says so). Credentials that no longer resolve leave it behind
/// with a Warning: blocking the deletion would help nobody.
async fn delete_integration(
    ctx: &Context,
    tenant: &Tenant,
    inputs: &NamespaceInputs,
    known_id: Option<String>,
) -> Result<(), ReconcileError> {
    let key = tenant.tenant_key();
    let reference = tenant.object_ref(&());
    let resolved = match resolve_tenant(&ctx.config, tenant, &inputs.secrets, known_id.clone()) {
        Ok(resolved) => resolved,
        Err(errors) => {
            let missing: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let note = format!(
                "the Open Messaging integration {} could not be deleted because the credentials do not resolve ({}); delete it in Genesys Cloud",
                known_id.as_deref().unwrap_or("(id unknown)"),
                missing.join("; ")
            );
            integration_left_behind(ctx, &reference, note).await;
            return Ok(());
        }
    };
    let Some(access) = resolved.genesys.as_ref() else {
        return Ok(());
    };
    let client = ctx.genesys_client(&key, access);
    // Without a recorded id, a create may still have happened (crash before
    // the status write): look it up.
    let id = match known_id {
        Some(id) => Some(id),
        None => client
            .find_integration(&access.integration)
            .await?
            .map(|found| found.id),
    };
    if let Some(id) = id {
        let note = match client.delete_integration(&id).await? {
            DeleteOutcome::Deleted => format!("Open Messaging integration {id} deleted"),
            DeleteOutcome::AlreadyGone => {
                format!("Open Messaging integration {id} was already gone")
            }
        };
        ctx.publish(
            &reference,
            EventType::Normal,
            "IntegrationDeleted",
            "DeleteIntegration",
            note,
        )
        .await;
    }
    Ok(())
}

/// The Warning that names an integration the operator did not delete, so
/// that an administrator deletes it in Genesys Cloud.
async fn integration_left_behind(ctx: &Context, reference: &ObjectReference, note: String) {
    ctx.publish(
        reference,
        EventType::Warning,
        "IntegrationLeftBehind",
        "DeleteIntegration",
        note,
    )
    .await;
}

fn skips_remote_cleanup(tenant: &Tenant) -> bool {
    tenant
        .annotations()
        .get(SKIP_REMOTE_CLEANUP)
        .is_some_and(|value| value == "true")
}

/// Whether the Tenant has been deleting for longer than the deadline.
fn cleanup_overdue(tenant: &Tenant, now: Timestamp) -> bool {
    tenant
        .metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|since| now.duration_since(since.0).try_into().ok())
        .is_some_and(|waited: Duration| waited >= CLEANUP_DEADLINE)
}

/// Tenants of a namespace that a Secret matters to: those referring to it
/// and those owning it (the rendered configuration Secrets).
fn tenants_for_secret(
    store: &Store<Tenant>,
    namespace: &str,
    name: &str,
    owner_uids: &[String],
) -> Vec<ObjectRef<Tenant>> {
    tenants_of(store, namespace)
        .into_iter()
        .filter(|t| {
            tenant_secret_names(t).iter().any(|n| n == name)
                || t.uid().is_some_and(|uid| owner_uids.contains(&uid))
        })
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

fn all_tenants_in(store: &Store<Tenant>, namespace: &str) -> Vec<ObjectRef<Tenant>> {
    tenants_of(store, namespace)
        .into_iter()
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

fn owner_uids(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == KIND)
        .map(|o| o.uid.clone())
        .collect()
}

/// Runs the Tenant controller until its shutdown trigger fires.
pub async fn run(ctx: Arc<Context>, controller: Controller<Tenant>) {
    controller
        .run(reconcile, error_policy::<Tenant>, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(tenant = %object, "reconciled"),
                Err(err) => tracing::debug!(error = %err, "tenant controller event"),
            }
        })
        .await;
}

/// The Tenant controller with every watch that should trigger it.
/// Maps a managed object to the Tenants that own it.
fn owning_tenants<K: Resource>(
    store: Store<Tenant>,
) -> impl Fn(K) -> Vec<ObjectRef<Tenant>> + Send + Sync + 'static {
    move |object: K| {
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        let owners = owner_uids(object.meta());
        tenants_of(&store, &namespace)
            .into_iter()
            .filter(|t| t.uid().is_some_and(|uid| owners.contains(&uid)))
            .map(|t| ObjectRef::from_obj(t.as_ref()))
            .collect()
    }
}

/// The Tenant controller with every watch that should trigger it: its
/// Secrets, the namespace's Storages and NotifierDestinations, and the
/// objects it manages (Deployment availability, drift or deletion of a
/// Service, autoscaler, Ingress or configuration Secret).
pub fn build(
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<Tenant> {
    let tenants: Api<Tenant> = Api::all(client.clone());
    let controller = Controller::new(tenants, watcher::Config::default().any_semantic());
    let store = controller.store();
    let managed =
        || watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));

    let secrets: Api<PartialObjectMeta<KubeSecret>> = Api::all(client.clone());
    let secret_store = store.clone();
    let storage_store = store.clone();
    let notifier_store = store.clone();
    controller
        .watches(secrets, watcher::Config::default(), move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            tenants_for_secret(
                &secret_store,
                &namespace,
                &secret.name_any(),
                &owner_uids(&secret.metadata),
            )
        })
        .watches(
            Api::<Storage>::all(client.clone()),
            watcher::Config::default(),
            move |storage| all_tenants_in(&storage_store, &storage.namespace().unwrap_or_default()),
        )
        .watches(
            Api::<NotifierDestination>::all(client.clone()),
            watcher::Config::default(),
            move |notifier| {
                all_tenants_in(&notifier_store, &notifier.namespace().unwrap_or_default())
            },
        )
        .watches(
            Api::<Deployment>::all(client.clone()),
            managed(),
            owning_tenants(store.clone()),
        )
        .watches(
            Api::<PartialObjectMeta<Service>>::all(client.clone()),
            managed(),
            owning_tenants(store.clone()),
        )
        .watches(
            Api::<PartialObjectMeta<HorizontalPodAutoscaler>>::all(client.clone()),
            managed(),
            owning_tenants(store.clone()),
        )
        .watches(
            Api::<PartialObjectMeta<Ingress>>::all(client),
            managed(),
            owning_tenants(store),
        )
        .graceful_shutdown_on(shutdown)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::tests::example;
    use crate::model::tests::{telegram_genesys, tenant};

    fn with_cx(name: &str, messaging: serde_json::Value) -> Tenant {
        let genesys = telegram_genesys(name);
        let cx = serde_json::to_value(&genesys.spec.cx).unwrap();
        tenant(name, messaging, cx)
    }

    #[test]
    fn a_line_tenant_links_its_add_friend_qr_code() {
        let line = with_cx(
            "acme-line",
            json!({"line": {
                "channelId": "1650000000",
                "channelSecret": {"name": "acme-line", "key": "channelSecret"},
                "channelAccessToken": {"name": "acme-line", "key": "token"}
            }}),
        );
        let status = tenant_status(&example(), &line, Vec::new(), Some("i-1".into()));
        assert_eq!(
            status.webhook_url.as_deref(),
            Some("https://um.example.com/line/shop.acme-line")
        );
        let links = status.links.expect("a LINE Tenant has links");
        assert_eq!(
            links.add_friend_qr_code.as_deref(),
            Some("https://um.example.com/line/shop.acme-line/qr.svg")
        );
        assert_eq!(
            links.add_friend_link.as_deref(),
            Some("https://um.example.com/line/shop.acme-line/friend-link")
        );
        assert_eq!(links.registration, None);
        assert_eq!(status.integration_id.as_deref(), Some("i-1"));
        assert_eq!(status.observed_generation, Some(2));

        // As written to the API: status.links.addFriendQrCode, which the
        // wide printer column reads.
        let written =
            serde_json::to_value(tenant_status(&example(), &line, Vec::new(), None)).unwrap();
        assert_eq!(
            written["links"],
            json!({
                "addFriendQrCode": "https://um.example.com/line/shop.acme-line/qr.svg",
                "addFriendLink": "https://um.example.com/line/shop.acme-line/friend-link"
            })
        );
    }

    #[test]
    fn a_telegram_tenant_has_no_links() {
        let status = tenant_status(&example(), &telegram_genesys("acme"), Vec::new(), None);
        assert_eq!(status.links, None);
        let written = serde_json::to_value(&status).unwrap();
        assert!(written.get("links").is_none(), "{written}");
        assert_eq!(written["platform"], "telegram");
    }

    #[test]
    fn a_teams_tenant_links_its_registration_page() {
        let teams = with_cx(
            "acme-teams",
            json!({"teams": {
                "appId": "00000000-0000-0000-0000-000000000001",
                "appPassword": {"name": "acme-teams", "key": "password"}
            }}),
        );
        let links = tenant_status(&example(), &teams, Vec::new(), None)
            .links
            .expect("a Teams Tenant has links");
        assert_eq!(
            links,
            um_crds::TenantLinks {
                registration: Some("https://um.example.com/teams/shop.acme-teams/register".into()),
                ..Default::default()
            }
        );
    }
}
