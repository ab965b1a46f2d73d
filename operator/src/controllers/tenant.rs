//! Tenant reconciler: resolve credentials (one GET per referenced Secret),
//! register the Genesys Cloud integration, write the Tenant's own
//! configuration Secrets (one per service that serves it), report
//! conditions and Events; on deletion (finalizer) delete the integration
//! and the configuration. The shared objects are the data plane's
//! ([`super::data_plane`]): a Tenant only pokes it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;
use um_config::{Platform, TenantConfig, layout};
use um_crds::{Storage, Tenant, TenantStatus};

use super::data_plane::delete_part;
use super::secret_index::SecretIndex;
use super::{
    Context, ReconcileError, SecretMap, apply, error_policy, referenced_secrets, resync_after,
    secret_watches, write_status,
};
use crate::conditions::{self, IntegrationState, StorageState};
use crate::config::{GCLOUDCX_SERVICE, OperatorConfig};
use crate::genesys::{DeleteOutcome, EnsureOutcome, GenesysError};
use crate::model::{
    openmessaging_webhook_url, resolve_tenant, tenant_links, tenant_secret_names, unsupported,
    webhook_url,
};
use crate::render::{every_tenant_part_name, object_name, render_tenant_parts, tenant_services};

/// Held by every Tenant this version serves until its Genesys Cloud
/// integration and its configuration Secrets are deleted. (The name is
/// from when only the integration needed it.)
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

/// Tenant reconciles in flight at once. Thousands of Tenants applied
/// together would otherwise each hold a reconcile's buffers (and a Genesys
/// and apiserver request) at the same moment, which costs memory and gains
/// nothing on a handful of cores.
const RECONCILE_CONCURRENCY: u16 = 16;

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
    let action = if unsupported(&tenant.spec).is_none() || has_finalizer {
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
        // Unsupported and never served: nothing to clean up.
        Action::await_change()
    } else {
        apply_tenant(tenant.clone(), &ctx).await?
    };
    Ok(action)
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
    let previous_status = tenant.status.clone().unwrap_or_default();
    let known_id = previous_status.integration_id.clone();

    let secrets = referenced_secrets(&ctx.client, &namespace, tenant_secret_names(&tenant)).await?;
    let resolved = resolve_tenant(&ctx.config, &tenant, &secrets, known_id.clone());
    let credentials = conditions::credentials_resolved(
        resolved.as_ref().err().map(Vec::as_slice).unwrap_or(&[]),
        generation,
    );
    let supported = conditions::tenant_supported(&tenant.spec, generation);
    if supported.status != um_crds::conditions::TRUE {
        return report_unsupported(ctx, &tenant, supported, credentials).await;
    }

    let step = register_integration(ctx, &tenant, &resolved, known_id.as_deref()).await;
    let integration_id = step.integration_id(known_id.as_deref());

    // The Tenant's configuration, with its freshest integration id. A
    // refused write (quota, admission policy) is reported in status and an
    // Event before the reconcile fails and backs off.
    let config = resolved.as_ref().ok().map(|resolved| {
        let mut config = resolved.config.clone();
        if let Some(genesys) = config.genesys.as_mut() {
            genesys.integration_id = integration_id.clone();
        }
        config
    });
    let refused = match write_parts(ctx, &tenant, config.as_ref(), &previous_status).await {
        Ok(()) => None,
        Err(err) if err.refusal().is_some() => Some(err),
        Err(err) => return Err(err),
    };
    ctx.data_plane.poke();
    let refusal = refused
        .as_ref()
        .and_then(ReconcileError::refusal)
        .or_else(|| ctx.data_plane.refusal());
    let reconciled = conditions::reconciled(refusal.as_deref(), generation);

    let integration = conditions::integration_registered(
        match &step {
            IntegrationStep::NotApplicable => IntegrationState::NotApplicable,
            IntegrationStep::WaitingForCredentials => IntegrationState::WaitingForCredentials,
            IntegrationStep::Done(outcome) => IntegrationState::Done(outcome),
            IntegrationStep::Failed(err) => IntegrationState::Failed(err),
        },
        generation,
    );
    let connector = connector_condition(ctx, &tenant, generation);
    let storage = storage_condition(ctx, &tenant, generation).await?;
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
    if status != previous_status {
        write_status::<Tenant, _>(&ctx.client, tenant.as_ref(), &status).await?;
    }

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

/// The services whose configuration held the Tenant as its last status
/// recorded it (platform and CX side), so a change of either removes what
/// the old services had.
fn previous_services(config: &OperatorConfig, status: &TenantStatus) -> Vec<String> {
    match status.platform.as_deref().map(str::parse::<Platform>) {
        Some(Ok(platform)) => tenant_services(
            config,
            platform,
            status.cx.as_deref() == Some("genesysCloud"),
        ),
        _ => Vec::new(),
    }
}

/// Step: the Tenant's configuration Secrets, one per service that serves
/// it (none while its credentials do not resolve), in the installation's
/// namespace; those of services that no longer serve it are deleted.
async fn write_parts(
    ctx: &Context,
    tenant: &Tenant,
    config: Option<&TenantConfig>,
    previous_status: &TenantStatus,
) -> Result<(), ReconcileError> {
    let home = ctx.data_plane.namespace();
    let namespace = tenant.namespace().unwrap_or_default();
    let uses_genesys = tenant.spec.cx.genesys_cloud().is_some();
    let parts = config
        .map(|config| render_tenant_parts(&ctx.config, home, &namespace, config, uses_genesys))
        .unwrap_or_default();
    for part in &parts {
        if !ctx.data_plane.holds(part) {
            apply(&ctx.client, part).await?;
            ctx.data_plane.wrote(part);
        }
    }
    let key = tenant.tenant_key();
    let written: Vec<String> = parts.iter().map(ResourceExt::name_any).collect();
    for service in previous_services(&ctx.config, previous_status) {
        let name = um_config::layout::tenant_part_name(&ctx.config.instance, &service, &key);
        if !written.contains(&name) {
            delete_part(ctx, &name).await?;
        }
    }
    Ok(())
}

/// Step: the Open Messaging integration exists and is current (once the
/// credentials resolve).
async fn register_integration(
    ctx: &Context,
    tenant: &Tenant,
    resolved: &Result<crate::model::ResolvedTenant, Vec<crate::resolve::ResolveError>>,
    known_id: Option<&str>,
) -> IntegrationStep {
    match (resolved, tenant.spec.cx.genesys_cloud()) {
        (_, None) => IntegrationStep::NotApplicable,
        (Ok(resolved), Some(_)) => match resolved.genesys.as_ref() {
            Some(access) => {
                let client = ctx.genesys_client(access);
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
    // Served before (a spec change made it unsupported): its configuration goes.
    write_parts(
        ctx,
        tenant,
        None,
        &tenant.status.clone().unwrap_or_default(),
    )
    .await?;
    ctx.data_plane.poke();
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

/// Names of the Deployments a Tenant's connectors run in: its platform's
/// and, with Genesys Cloud, gcloudcx.
pub fn connector_names(config: &OperatorConfig, tenant: &Tenant) -> Vec<String> {
    let mut services = vec![tenant.spec.platform().as_str().to_owned()];
    if tenant.spec.cx.genesys_cloud().is_some() {
        services.push(GCLOUDCX_SERVICE.to_owned());
    }
    services
        .iter()
        .map(|service| object_name(&config.instance, service))
        .collect()
}

fn connector_condition(ctx: &Context, tenant: &Tenant, generation: Option<i64>) -> Condition {
    let mut services = vec![tenant.spec.platform().as_str().to_owned()];
    if tenant.spec.cx.genesys_cloud().is_some() {
        services.push(GCLOUDCX_SERVICE.to_owned());
    }
    let mut conditions = services.into_iter().map(|service| {
        let name = object_name(&ctx.config.instance, &service);
        let deployment = ctx.data_plane.deployment(&name);
        conditions::connector_available(
            &name,
            deployment.as_deref(),
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

/// Whether the Tenant's ConnectorAvailable would read differently now than
/// its status says (so a Deployment change requeues only those Tenants).
pub fn connector_condition_changed(ctx: &Context, tenant: &Tenant) -> bool {
    let now = connector_condition(ctx, tenant, tenant.metadata.generation);
    let recorded = tenant.status.as_ref().and_then(|status| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == now.type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    });
    recorded != Some((now.status, now.reason))
}

/// StorageResolved: the Storage the Tenant names, or its namespace's
/// default, and whether its credentials resolve.
async fn storage_condition(
    ctx: &Context,
    tenant: &Tenant,
    generation: Option<i64>,
) -> Result<Condition, ReconcileError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let storages: Vec<Arc<Storage>> = ctx
        .storages()
        .state()
        .into_iter()
        .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let candidates: Vec<&Arc<Storage>> = match &tenant.spec.storage_ref {
        Some(reference) => storages
            .iter()
            .filter(|s| s.name_any() == reference.name)
            .collect(),
        None => storages.iter().filter(|s| s.spec.default).collect(),
    };
    let names = candidates.iter().flat_map(|s| {
        um_crds::SecretRefs::secret_refs(&s.spec)
            .into_iter()
            .map(|(_, r)| r.name.clone())
            .collect::<Vec<_>>()
    });
    let secrets: SecretMap = referenced_secrets(&ctx.client, &namespace, names).await?;
    let usable = |storage: &Storage| crate::model::resolve_storage(storage, &secrets).is_ok();
    let state = match &tenant.spec.storage_ref {
        Some(reference) => match candidates.first() {
            None => StorageState::NotFound(&reference.name),
            Some(storage) if !usable(storage) => StorageState::NotReady(&reference.name),
            Some(_) => StorageState::Named(&reference.name),
        },
        None => match candidates.iter().find(|s| usable(s)) {
            Some(storage) => {
                StorageState::Default(storage.metadata.name.as_deref().unwrap_or_default())
            }
            None => StorageState::NoStorage,
        },
    };
    Ok(conditions::storage_resolved(state, generation))
}

/// Deletion: the integration goes first (404 counts as gone), then the
/// Tenant's configuration Secrets. The remote cleanup is
/// skipped when the Tenant carries [`SKIP_REMOTE_CLEANUP`], and given up
/// (with a Warning Event) once it has failed for [`CLEANUP_DEADLINE`], so a
/// Genesys organisation that is gone cannot hold the namespace forever.
async fn cleanup_tenant(tenant: Arc<Tenant>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let key = tenant.tenant_key();
    let reference = tenant.object_ref(&());
    let secrets = referenced_secrets(&ctx.client, &namespace, tenant_secret_names(&tenant)).await?;
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
            match delete_integration(ctx, &tenant, &secrets, known_id).await {
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
    for name in every_tenant_part_name(&ctx.config, &key) {
        delete_part(ctx, &name).await?;
    }
    // The store still holds the Tenant (deleting): the data plane leaves it out.
    ctx.data_plane.poke();
    Ok(Action::await_change())
}

/// Step of deletion: the Tenant's integration is deleted in Genesys Cloud
/// (an Event says so). Credentials that no longer resolve leave it behind
/// with a Warning: blocking the deletion would help nobody.
async fn delete_integration(
    ctx: &Context,
    tenant: &Tenant,
    secrets: &SecretMap,
    known_id: Option<String>,
) -> Result<(), ReconcileError> {
    let reference = tenant.object_ref(&());
    let resolved = match resolve_tenant(&ctx.config, tenant, secrets, known_id.clone()) {
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
    let client = ctx.genesys_client(access);
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

fn tenants_in(store: &Store<Tenant>, namespace: &str) -> Vec<Arc<Tenant>> {
    store
        .state()
        .into_iter()
        .filter(|t| t.namespace().as_deref() == Some(namespace))
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

/// The Tenant controller with every watch that should trigger it: the
/// Secrets its Tenants refer to (metadata only, not cached, the
/// installation's own configuration Secrets left out), the Storages of
/// their namespace, and the Tenants the data plane requeues (a
/// Deployment's availability changed, a configuration Secret was deleted,
/// the data plane was refused).
pub fn build(
    client: kube::Client,
    config: &OperatorConfig,
    requeued: mpsc::UnboundedReceiver<ObjectRef<Tenant>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<Tenant> {
    let (store, writer) = reflector::store();
    let index = Arc::new(SecretIndex::default());
    let indexing = index.clone();
    let tenants = watcher(
        Api::<Tenant>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(slim)
    .inspect(move |event| {
        if let Ok(event) = event {
            indexing.observe(event);
        }
    })
    .reflect(writer)
    .applied_objects();
    let controller = Controller::for_stream(tenants, store.clone()).with_config(
        kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY),
    );
    let mut controller = controller
        .reconcile_on(futures::stream::unfold(requeued, |mut rx| async move {
            rx.recv().await.map(|tenant| (tenant, rx))
        }));
    let not_ours = format!("!{}", layout::INSTANCE_LABEL);
    for secrets in secret_watches(&client, config) {
        let index = index.clone();
        controller = controller.watches(
            secrets,
            watcher::Config::default().labels(&not_ours),
            move |secret| {
                index.tenants_naming(&secret.namespace().unwrap_or_default(), &secret.name_any())
            },
        );
    }
    let storage_store = store;
    controller
        .watches(
            Api::<Storage>::all(client),
            watcher::Config::default(),
            move |storage| {
                tenants_in(&storage_store, &storage.namespace().unwrap_or_default())
                    .into_iter()
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
}

/// What the cache keeps of a Tenant: everything but the field managers
/// and kubectl's last-applied copy, which are most of a small object's
/// size and which the operator never reads (10,000 Tenants held whole
/// were most of its memory).
fn slim(tenant: &mut Tenant) {
    tenant.managed_fields_mut().clear();
    tenant.annotations_mut().remove(LAST_APPLIED);
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

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
