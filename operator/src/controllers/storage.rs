//! Storage reconciler: its Secrets resolve, and at most one Storage per
//! namespace is the default. The Tenant controller renders Storages into
//! the services' configuration; this one reports on them.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use um_crds::{SecretRefs, Storage, StorageStatus};

use super::{
    Context, ReconcileError, error_policy, list_in, referenced_secrets, resync_after,
    secret_watches, write_status,
};
use crate::conditions;
use crate::model::{other_defaults, resolve_storage};

const KIND: &str = "Storage";

pub async fn reconcile(storage: Arc<Storage>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if !ctx
        .config
        .watches_namespace(storage.namespace().as_deref().unwrap_or_default())
    {
        // Another installation serves that namespace.
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_started(KIND);
    if storage.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = storage
        .namespace()
        .ok_or(ReconcileError::NoNamespace { kind: KIND })?;
    let generation = storage.metadata.generation;
    let names = storage
        .spec
        .secret_refs()
        .into_iter()
        .map(|(_, r)| r.name.clone());
    let secrets = referenced_secrets(&ctx.client, &namespace, names).await?;
    let storages: Vec<Storage> = list_in(&ctx.client, &namespace, "Storages").await?;

    let errors = resolve_storage(&storage, &secrets)
        .err()
        .unwrap_or_default();
    let credentials = conditions::credentials_resolved(&errors, generation);
    let others = if storage.spec.default {
        other_defaults(&storages, &storage.name_any())
    } else {
        Vec::new()
    };
    let conflict = conditions::default_conflict(&others, generation);
    let mut next = vec![
        conditions::storage_supported(generation),
        credentials,
        conflict,
    ];
    next.push(conditions::ready(&next, generation));
    let previous = storage
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let next = conditions::merge(&previous, next, Timestamp::now());
    let status = StorageStatus {
        observed_generation: generation,
        conditions: next.clone(),
    };
    write_status::<Storage, _>(&ctx.client, &storage, &status).await?;
    ctx.publish_transitions(&storage.object_ref(&()), &previous, &next)
        .await;
    ctx.record_success(&format!("{KIND}/{namespace}/{}", storage.name_any()));
    Ok(Action::requeue(resync_after(storage.uid().as_deref())))
}

fn storages_in(store: &Store<Storage>, namespace: &str) -> impl Iterator<Item = Arc<Storage>> {
    let namespace = namespace.to_owned();
    store
        .state()
        .into_iter()
        .filter(move |s| s.namespace().as_deref() == Some(namespace.as_str()))
}

pub fn build(
    client: kube::Client,
    config: &crate::config::OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<Storage> {
    let mut controller = Controller::new(
        Api::<Storage>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    for secrets in secret_watches(&client, config) {
        let by_secret = controller.store();
        controller = controller.watches(secrets, watcher::Config::default(), move |secret| {
            let name = secret.name_any();
            storages_in(&by_secret, &secret.namespace().unwrap_or_default())
                .filter(|s| s.spec.secret_refs().iter().any(|(_, r)| r.name == name))
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        });
    }
    let by_sibling = controller.store();
    controller
        // A default flag changing on one Storage changes its siblings' conflict.
        .watches(
            Api::<Storage>::all(client),
            watcher::Config::default(),
            move |changed| {
                let name = changed.name_any();
                storages_in(&by_sibling, &changed.namespace().unwrap_or_default())
                    .filter(|s| s.name_any() != name)
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
}

pub async fn run(ctx: Arc<Context>, controller: Controller<Storage>) {
    controller
        .run(reconcile, error_policy::<Storage>, ctx)
        .for_each(|_| async {})
        .await;
}
