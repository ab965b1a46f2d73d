//! The installation's data plane: the connector Deployments, Services,
//! autoscalers, the one Ingress and the settings Secret, in the operator's
//! namespace, serving the Tenants of every watched namespace.
//!
//! They depend only on which services some Tenant uses, so they are not
//! re-rendered per Tenant: Tenant reconciles poke this loop, which applies
//! only when that set changed (or an object drifted), and sweeps by the
//! installation's label what no service needs. Its watches are also what
//! tells Tenants about their connectors: a Deployment whose availability
//! changes requeues exactly the Tenants whose condition it changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret as KubeSecret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, mpsc};
use um_config::layout::{ConfigPart, PART_LABEL, SERVICE_LABEL, TENANT_ANNOTATION};
use um_crds::{NotifierDestination, Tenant};

use super::{Context, ReconcileError, apply, backoff, sweep_orphans};
use crate::config::OperatorConfig;
use crate::model::unsupported;
use crate::render::{
    managed_selector, part_of, render_data_plane, services_in_use, tenant_services,
};

/// Tenant changes arriving within this window make one pass, so a
/// thousand Tenants applied at once cost a handful of passes.
const COALESCE: Duration = Duration::from_millis(500);

/// Shared between the loop, the Tenant reconciles and main.
pub struct DataPlane {
    namespace: String,
    wake: Notify,
    /// Apply even if the services in use did not change (drift, retry).
    force: AtomicBool,
    /// The apiserver's refusal of the last pass, if it failed.
    refusal: Mutex<Option<String>>,
    deployments: Store<Deployment>,
    requeue: mpsc::UnboundedSender<ObjectRef<Tenant>>,
    /// What this process last wrote to each configuration Secret (a hash
    /// of the object, by a hash of its name), so a reconcile that changes
    /// nothing writes nothing: requeues after a connector became available
    /// would otherwise rewrite every Tenant's Secrets.
    written: Mutex<HashMap<u64, u64>>,
}

/// What `main` wires: the Deployment reflector to drive, and the Tenants
/// to requeue (the Tenant controller's `reconcile_on`).
pub struct DataPlaneParts {
    pub plane: Arc<DataPlane>,
    pub deployment_writer: reflector::store::Writer<Deployment>,
    pub requeued: mpsc::UnboundedReceiver<ObjectRef<Tenant>>,
}

impl DataPlane {
    pub fn build(namespace: &str) -> DataPlaneParts {
        let (deployments, deployment_writer) = reflector::store();
        let (requeue, requeued) = mpsc::unbounded_channel();
        DataPlaneParts {
            plane: Arc::new(Self {
                namespace: namespace.to_owned(),
                wake: Notify::new(),
                force: AtomicBool::new(true),
                refusal: Mutex::new(None),
                deployments,
                requeue,
                written: Mutex::new(HashMap::new()),
            }),
            deployment_writer,
            requeued,
        }
    }

    /// The namespace of the data plane (the operator's own).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Something the shared objects depend on may have changed.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    fn force(&self) {
        self.force.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Why the last pass failed, in the apiserver's words.
    pub fn refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_refusal(&self, refusal: Option<String>) -> bool {
        let mut current = self.refusal.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *current != refusal;
        *current = refusal;
        changed
    }

    /// A connector Deployment as the apiserver last reported it.
    pub fn deployment(&self, name: &str) -> Option<Arc<Deployment>> {
        self.deployments
            .get(&ObjectRef::new(name).within(&self.namespace))
    }

    /// Whether `part` is what this process last wrote under its name.
    pub fn holds(&self, part: &KubeSecret) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.get(&fingerprint(&part.name_any())) == Some(&fingerprint(part))
    }

    /// Records a configuration Secret the apiserver accepted.
    pub fn wrote(&self, part: &KubeSecret) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fingerprint(&part.name_any()), fingerprint(part));
    }

    /// A configuration Secret was deleted (by us or not): write it again
    /// when asked.
    pub fn forget(&self, name: &str) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fingerprint(&name.to_owned()));
    }

    fn requeue(&self, tenant: &Tenant) {
        // The receiver lives as long as the Tenant controller.
        let _ = self.requeue.send(ObjectRef::from_obj(tenant));
    }
}

fn fingerprint(value: &impl serde::Serialize) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    // Serialising a Secret cannot fail (string keys, bytes, strings).
    serde_json::to_vec(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Whether this installation serves the Tenant now: in a watched
/// namespace, not being deleted, on a platform this version runs.
pub fn served(config: &OperatorConfig, tenant: &Tenant) -> bool {
    config.watches_namespace(tenant.namespace().as_deref().unwrap_or_default())
        && tenant.metadata.deletion_timestamp.is_none()
        && unsupported(&tenant.spec).is_none()
}

fn served_tenants(ctx: &Context) -> Vec<Arc<Tenant>> {
    ctx.tenants()
        .state()
        .into_iter()
        .filter(|t| served(&ctx.config, t))
        .collect()
}

/// One change the loop watches for.
enum Seen {
    /// A Deployment changed: drift check, and Tenants' availability.
    Deployment(Arc<Deployment>),
    /// Another shared object changed or went away.
    Shared,
    /// A configuration Secret was deleted.
    PartDeleted(PartialObjectMeta<KubeSecret>),
    /// A NotifierDestination was deleted.
    NotifierDeleted(NotifierDestination),
}

fn metadata_changes<K>(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> impl Stream<Item = Seen> + use<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<PartialObjectMeta<K>> = Api::namespaced(client.clone(), namespace);
    watcher(api, watcher::Config::default().labels(selector))
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone,
                ) => Some(Seen::Shared),
                _ => None,
            }
        })
}

/// Runs until `stop` resolves.
pub async fn run(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<Deployment>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let plane = ctx.data_plane.clone();
    let namespace = plane.namespace.clone();
    let selector = managed_selector(&ctx.config.instance);
    let client = &ctx.client;

    let deployments = reflector::reflector(
        writer,
        watcher(
            Api::<Deployment>::namespaced(client.clone(), &namespace),
            watcher::Config::default().labels(&selector),
        ),
    )
    .default_backoff()
    .applied_objects()
    .filter_map(|d| async move { d.ok().map(|d| Seen::Deployment(Arc::new(d))) });
    let secrets = watcher(
        Api::<PartialObjectMeta<KubeSecret>>::namespaced(client.clone(), &namespace),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff()
    .filter_map(|event| async move {
        match event {
            Ok(watcher::Event::Delete(secret)) => Some(Seen::PartDeleted(secret)),
            _ => None,
        }
    });
    let notifiers = watcher(
        Api::<NotifierDestination>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|event| async move {
        match event {
            Ok(watcher::Event::Delete(notifier)) => Some(Seen::NotifierDeleted(notifier)),
            _ => None,
        }
    });
    let mut seen = futures::stream::select_all(vec![
        deployments.boxed(),
        metadata_changes::<Service>(client, &namespace, &selector).boxed(),
        metadata_changes::<HorizontalPodAutoscaler>(client, &namespace, &selector).boxed(),
        metadata_changes::<Ingress>(client, &namespace, &selector).boxed(),
        secrets.boxed(),
        notifiers.boxed(),
    ]);

    let mut stop = std::pin::pin!(stop);
    let mut applied: Option<Vec<String>> = None;
    let mut failures = 0u32;
    let mut retry: Option<tokio::time::Instant> = None;
    let mut swept = false;
    ctx.tenants().wait_until_ready().await.ok();
    loop {
        let retry_at =
            retry.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            _ = &mut stop => return,
            _ = plane.wake.notified() => {
                // Let the burst this poke belongs to arrive.
                tokio::time::sleep(COALESCE).await;
            }
            _ = tokio::time::sleep_until(retry_at), if retry.is_some() => {
                retry = None;
                plane.force.store(true, Ordering::SeqCst);
            }
            Some(change) = seen.next() => {
                handle(&ctx, change).await;
                continue;
            }
        }
        let services = services_in_use(
            &ctx.config,
            served_tenants(&ctx)
                .iter()
                .map(|t| (t.spec.platform(), t.spec.cx.genesys_cloud().is_some())),
        );
        let forced = plane.force.swap(false, Ordering::SeqCst);
        if !forced && applied.as_ref() == Some(&services) {
            continue;
        }
        let outcome = apply_data_plane(&ctx, &services).await;
        let refusal = outcome.as_ref().err().and_then(ReconcileError::refusal);
        match outcome {
            Ok(()) => {
                applied = Some(services);
                failures = 0;
                if !swept {
                    match sweep_stale_parts(&ctx).await {
                        Ok(()) => swept = true,
                        Err(err) => {
                            tracing::warn!(error = %err, "sweeping stale configuration failed")
                        }
                    }
                }
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures);
                tracing::warn!(error = %err, retry_in_s = delay.as_secs(), "applying the data plane failed");
                retry = Some(tokio::time::Instant::now() + delay);
            }
        }
        if plane.set_refusal(refusal) {
            // Every served Tenant reports the data plane in Reconciled.
            for tenant in served_tenants(&ctx) {
                plane.requeue(&tenant);
            }
        }
    }
}

async fn handle(ctx: &Context, change: Seen) {
    let plane = &ctx.data_plane;
    match change {
        Seen::Deployment(deployment) => {
            plane.force();
            // The reflector stored it before yielding: Tenants whose
            // ConnectorAvailable it changes see the new state.
            let name = deployment.name_any();
            for tenant in served_tenants(ctx) {
                let uses = super::tenant::connector_names(&ctx.config, &tenant).contains(&name);
                if uses && super::tenant::connector_condition_changed(ctx, &tenant) {
                    plane.requeue(&tenant);
                }
            }
        }
        Seen::Shared => plane.force(),
        Seen::PartDeleted(secret) => {
            plane.forget(&secret.name_any());
            match part_of(secret.labels()) {
                Some(ConfigPart::Tenant) => {
                    // Deleted by someone else while its Tenant is served: write it again.
                    let key = secret
                        .annotations()
                        .get(TENANT_ANNOTATION)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(tenant) = served_tenants(ctx)
                        .into_iter()
                        .find(|t| t.tenant_key() == key)
                    {
                        plane.requeue(&tenant);
                    }
                }
                Some(ConfigPart::Settings) => plane.force(),
                Some(ConfigPart::Notifier) | None => {}
            }
        }
        Seen::NotifierDeleted(notifier) => {
            let name = um_config::layout::notifier_part_name(
                &ctx.config.instance,
                notifier.namespace().as_deref().unwrap_or_default(),
                &notifier.name_any(),
            );
            if let Err(err) = delete_part(ctx, &name).await {
                tracing::warn!(error = %err, "deleting a notifier's configuration failed");
            }
        }
    }
}

/// Deletes one configuration Secret of the installation (gone already is fine).
pub async fn delete_part(ctx: &Context, name: &str) -> Result<(), ReconcileError> {
    ctx.data_plane.forget(name);
    let api: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), ctx.data_plane.namespace());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(ReconcileError::Delete {
            kind: "Secret".to_owned(),
            namespace: ctx.data_plane.namespace().to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Applies the shared objects for `services` and deletes the installation's
/// shared objects no service needs.
pub(crate) async fn apply_data_plane(
    ctx: &Context,
    services: &[String],
) -> Result<(), ReconcileError> {
    let namespace = ctx.data_plane.namespace();
    let desired = render_data_plane(&ctx.config, namespace, services);
    let names = |objects: Vec<String>| objects.into_iter().collect::<BTreeSet<_>>();
    for secret in &desired.secrets {
        apply(&ctx.client, secret).await?;
    }
    for service in &desired.services {
        apply(&ctx.client, service).await?;
    }
    for deployment in &desired.deployments {
        apply(&ctx.client, deployment).await?;
    }
    for autoscaler in &desired.autoscalers {
        apply(&ctx.client, autoscaler).await?;
    }
    if let Some(ingress) = &desired.ingress {
        apply(&ctx.client, ingress).await?;
    }
    let instance = &ctx.config.instance;
    let mut swept = Vec::new();
    // Only the settings part: Tenant and notifier parts have owners of their own.
    let settings_selector = format!(
        "{},{PART_LABEL}={}",
        managed_selector(instance),
        ConfigPart::Settings.as_str()
    );
    swept.extend(
        sweep_orphans::<KubeSecret>(
            &ctx.client,
            namespace,
            &settings_selector,
            &names(desired.secrets.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    let selector = managed_selector(instance);
    swept.extend(
        sweep_orphans::<Deployment>(
            &ctx.client,
            namespace,
            &selector,
            &names(desired.deployments.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<Service>(
            &ctx.client,
            namespace,
            &selector,
            &names(desired.services.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<HorizontalPodAutoscaler>(
            &ctx.client,
            namespace,
            &selector,
            &names(desired.autoscalers.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<Ingress>(
            &ctx.client,
            namespace,
            &selector,
            &names(desired.ingress.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    if swept.is_empty() {
        tracing::info!(namespace, ?services, "data plane applied");
    } else {
        tracing::info!(namespace, ?services, objects = ?swept, "data plane applied; deleted objects no service needs");
    }
    Ok(())
}

/// Once per start: Tenant and notifier parts whose owner is gone (deleted
/// while the operator was down, or no longer in `watchNamespaces`). Pages
/// through metadata only.
async fn sweep_stale_parts(ctx: &Context) -> Result<(), ReconcileError> {
    let namespace = ctx.data_plane.namespace();
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for tenant in served_tenants(ctx) {
        let services = tenant_services(
            &ctx.config,
            tenant.spec.platform(),
            tenant.spec.cx.genesys_cloud().is_some(),
        );
        wanted.insert(tenant.tenant_key(), services.into_iter().collect());
    }
    let api: Api<PartialObjectMeta<KubeSecret>> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "{},{PART_LABEL}={}",
        managed_selector(&ctx.config.instance),
        ConfigPart::Tenant.as_str()
    );
    let mut params = ListParams::default().labels(&selector).limit(500);
    let mut stale = Vec::new();
    loop {
        let page = api
            .list_metadata(&params)
            .await
            .map_err(|source| ReconcileError::List {
                what: "configuration Secrets",
                namespace: namespace.to_owned(),
                source,
            })?;
        for secret in &page.items {
            let key = secret.annotations().get(TENANT_ANNOTATION);
            let service = secret.labels().get(SERVICE_LABEL);
            let keep = match (key, service) {
                (Some(key), Some(service)) => wanted.get(key).is_some_and(|s| s.contains(service)),
                _ => false,
            };
            if !keep {
                stale.push(secret.name_any());
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    for name in &stale {
        delete_part(ctx, name).await?;
    }
    if !stale.is_empty() {
        tracing::info!(
            count = stale.len(),
            "deleted configuration of Tenants this installation no longer serves"
        );
    }
    Ok(())
}
