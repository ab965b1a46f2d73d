//! NotifierDestination reconciler: its URL or routing key resolves, and a
//! resolved destination is written as a configuration Secret every service
//! reads (deleted again when it no longer resolves; the data plane deletes
//! it with the destination).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use um_crds::{NotifierDestination, NotifierDestinationStatus};

use super::data_plane::delete_part;
use super::{
    Context, ReconcileError, apply, error_policy, referenced_secrets, resync_after, secret_watches,
    write_status,
};
use crate::conditions;
use crate::model::resolve_notifier;
use crate::render::render_notifier_part;

const KIND: &str = "NotifierDestination";

pub async fn reconcile(
    notifier: Arc<NotifierDestination>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx
        .config
        .watches_namespace(notifier.namespace().as_deref().unwrap_or_default())
    {
        // Another installation serves that namespace.
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_started(KIND);
    if notifier.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = notifier
        .namespace()
        .ok_or(ReconcileError::NoNamespace { kind: KIND })?;
    let generation = notifier.metadata.generation;
    let names = notifier.spec.target().map(|(_, r)| r.name.clone());
    let secrets = referenced_secrets(&ctx.client, &namespace, names).await?;
    let home = ctx.data_plane.namespace();
    let resolved = resolve_notifier(&notifier, &secrets, home);
    match &resolved {
        Ok(config) => {
            apply(
                &ctx.client,
                &render_notifier_part(&ctx.config, home, &namespace, config),
            )
            .await?;
        }
        Err(_) => {
            let name = um_config::layout::notifier_part_name(
                &ctx.config.instance,
                &namespace,
                &notifier.name_any(),
            );
            delete_part(&ctx, &name).await?;
        }
    }
    let errors = resolved.err().unwrap_or_default();
    let mut next = vec![conditions::credentials_resolved(&errors, generation)];
    next.push(conditions::ready(&next, generation));
    let previous = notifier
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let next = conditions::merge(&previous, next, Timestamp::now());
    let status = NotifierDestinationStatus {
        observed_generation: generation,
        conditions: next.clone(),
    };
    write_status::<NotifierDestination, _>(&ctx.client, &notifier, &status).await?;
    ctx.publish_transitions(&notifier.object_ref(&()), &previous, &next)
        .await;
    ctx.record_success(&format!("{KIND}/{namespace}/{}", notifier.name_any()));
    Ok(Action::requeue(resync_after(notifier.uid().as_deref())))
}

pub fn build(
    client: kube::Client,
    config: &crate::config::OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<NotifierDestination> {
    let mut controller = Controller::new(
        Api::<NotifierDestination>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    for secrets in secret_watches(&client, config) {
        let store = controller.store();
        controller = controller.watches(secrets, watcher::Config::default(), move |secret| {
            let namespace = secret.namespace();
            let name = secret.name_any();
            store
                .state()
                .into_iter()
                .filter(|n| {
                    n.namespace() == namespace
                        && n.spec.target().is_some_and(|(_, r)| r.name == name)
                })
                .map(|n| ObjectRef::from_obj(n.as_ref()))
                .collect::<Vec<_>>()
        });
    }
    controller.graceful_shutdown_on(shutdown)
}

pub async fn run(ctx: Arc<Context>, controller: Controller<NotifierDestination>) {
    controller
        .run(reconcile, error_policy::<NotifierDestination>, ctx)
        .for_each(|_| async {})
        .await;
}
