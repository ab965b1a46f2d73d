//! The shared objects of one namespace (connector Deployments, Services,
//! autoscalers, configuration Secrets, the Ingress) are rendered from every
//! Tenant, Storage and NotifierDestination there and applied together, so
//! whichever Tenant's reconcile runs, the result is the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret as KubeSecret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use um_crds::{NotifierDestination, Storage, Tenant};

use super::{Context, ReconcileError, apply, list_in, namespace_secrets, sweep_orphans};
use crate::config::OperatorConfig;
use crate::model::{resolve_notifier, resolve_tenant, unsupported};
use crate::render::{NamespaceState, NamespaceTenant, TenantOwner, render_namespace};

pub type SecretMap = BTreeMap<String, BTreeMap<String, ByteString>>;

/// What a namespace reconcile reads besides the Tenants.
pub struct NamespaceInputs {
    pub secrets: SecretMap,
    pub storages: Vec<Storage>,
    pub notifiers: Vec<NotifierDestination>,
}

pub async fn load_inputs(
    ctx: &Context,
    namespace: &str,
) -> Result<NamespaceInputs, ReconcileError> {
    Ok(NamespaceInputs {
        secrets: namespace_secrets(&ctx.client, namespace).await?,
        storages: list_in(&ctx.client, namespace, "Storages").await?,
        notifiers: list_in(&ctx.client, namespace, "NotifierDestinations").await?,
    })
}

/// Pure: the rendering input. `integration_ids` overrides what a Tenant's
/// status says (the reconcile that just registered it knows better).
pub fn namespace_state(
    config: &OperatorConfig,
    namespace: &str,
    tenants: &[Arc<Tenant>],
    inputs: &NamespaceInputs,
    integration_ids: &BTreeMap<String, Option<String>>,
) -> NamespaceState {
    let tenants = tenants
        .iter()
        .filter(|t| {
            t.namespace().as_deref() == Some(namespace)
                && t.metadata.deletion_timestamp.is_none()
                && unsupported(&t.spec).is_none()
        })
        .map(|tenant| {
            let uid = tenant.uid().unwrap_or_default();
            let integration_id = match integration_ids.get(&uid) {
                Some(id) => id.clone(),
                None => tenant
                    .status
                    .as_ref()
                    .and_then(|s| s.integration_id.clone()),
            };
            NamespaceTenant {
                owner: TenantOwner {
                    name: tenant.name_any(),
                    uid,
                },
                platform: tenant.spec.platform(),
                uses_genesys: tenant.spec.cx.genesys_cloud().is_some(),
                config: resolve_tenant(config, tenant, &inputs.secrets, integration_id)
                    .ok()
                    .map(|resolved| resolved.config),
            }
        })
        .collect();
    NamespaceState {
        namespace: namespace.to_owned(),
        tenants,
        notifiers: inputs
            .notifiers
            .iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| resolve_notifier(n, &inputs.secrets).ok())
            .collect(),
    }
}

/// Applies the rendered objects and deletes the operator's objects that are
/// no longer rendered. Returns the Deployments as the apiserver has them.
pub async fn apply_namespace(
    ctx: &Context,
    state: &NamespaceState,
) -> Result<BTreeMap<String, Deployment>, ReconcileError> {
    let desired = render_namespace(&ctx.config, state);
    let namespace = state.namespace.as_str();
    let names = |objects: Vec<String>| objects.into_iter().collect::<BTreeSet<_>>();

    for secret in &desired.secrets {
        apply(&ctx.client, secret).await?;
    }
    for service in &desired.services {
        apply(&ctx.client, service).await?;
    }
    let mut deployments = BTreeMap::new();
    for deployment in &desired.deployments {
        let applied = apply(&ctx.client, deployment).await?;
        deployments.insert(applied.name_any(), applied);
    }
    for autoscaler in &desired.autoscalers {
        apply(&ctx.client, autoscaler).await?;
    }
    if let Some(ingress) = &desired.ingress {
        apply(&ctx.client, ingress).await?;
    }

    let mut swept = Vec::new();
    swept.extend(
        sweep_orphans::<KubeSecret>(
            &ctx.client,
            namespace,
            &names(desired.secrets.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<Deployment>(
            &ctx.client,
            namespace,
            &names(desired.deployments.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<Service>(
            &ctx.client,
            namespace,
            &names(desired.services.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<HorizontalPodAutoscaler>(
            &ctx.client,
            namespace,
            &names(desired.autoscalers.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    swept.extend(
        sweep_orphans::<Ingress>(
            &ctx.client,
            namespace,
            &names(desired.ingress.iter().map(|o| o.name_any()).collect()),
        )
        .await?,
    );
    if !swept.is_empty() {
        tracing::info!(namespace, objects = ?swept, "deleted objects no Tenant needs any more");
    }
    Ok(deployments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::tests::example;
    use crate::model::tests::{telegram_genesys, with_bus};

    fn inputs() -> NamespaceInputs {
        let storage = |name: &str, secret: &str| -> Storage {
            serde_json::from_value(json!({
                "apiVersion": "messaging.universal-messaging.io/v1alpha1", "kind": "Storage",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"type": "gcs", "default": false, "gcs": {"bucket": "bkt", "serviceAccountKey": {"name": secret, "key": "key"}}}
            }))
            .unwrap()
        };
        NamespaceInputs {
            secrets: with_bus(&[
                ("acme-telegram", &[("token", "111:bot")]),
                (
                    "acme-genesys",
                    &[
                        ("clientSecret", "cs"),
                        ("webhookToken", "webhook-token-0123456789"),
                    ],
                ),
                ("gcs", &[("key", "{}")]),
            ]),
            storages: vec![storage("usable", "gcs"), storage("broken", "missing")],
            notifiers: vec![],
        }
    }

    #[test]
    fn renders_live_tenants_with_the_freshest_integration_id() {
        let mut deleting = telegram_genesys("old");
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let mut other_namespace = telegram_genesys("elsewhere");
        other_namespace.metadata.namespace = Some("other".into());
        let mut acme = telegram_genesys("acme");
        acme.status = Some(um_crds::TenantStatus {
            integration_id: Some("from-status".into()),
            ..Default::default()
        });
        // Served by nothing in this version: a preview platform, PureConnect.
        let preview = crate::model::tests::preview_tenant("preview");
        let pure_connect = crate::model::tests::tenant(
            "pc",
            json!({"telegram": {"botToken": {"name": "acme-telegram", "key": "token"}}}),
            json!({"pureConnect": {"primaryUrl": "https://cic.example.com", "target": {"name": "Support", "type": "Workgroup"}}}),
        );
        let tenants = vec![
            Arc::new(acme),
            Arc::new(deleting),
            Arc::new(other_namespace),
            Arc::new(preview),
            Arc::new(pure_connect),
        ];

        let state = namespace_state(&example(), "shop", &tenants, &inputs(), &BTreeMap::new());
        assert_eq!(
            state.tenants.len(),
            1,
            "deleting, foreign and unsupported Tenants are left out"
        );
        let genesys = |state: &NamespaceState| {
            state.tenants[0]
                .config
                .as_ref()
                .unwrap()
                .genesys
                .as_ref()
                .unwrap()
                .integration_id
                .clone()
        };
        assert_eq!(genesys(&state).as_deref(), Some("from-status"));

        let fresh = BTreeMap::from([("uid-acme".to_owned(), Some("just-created".to_owned()))]);
        let state = namespace_state(&example(), "shop", &tenants, &inputs(), &fresh);
        assert_eq!(genesys(&state).as_deref(), Some("just-created"));
    }
}
