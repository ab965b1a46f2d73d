//! Custom resources + their Secrets → the resolved configuration the
//! services read (`um_config`), and what the Genesys client needs. Pure:
//! Secrets come in through [`SecretSource`].

mod messaging;

use std::collections::BTreeMap;

use kube::ResourceExt;
use um_config::{
    ApiAuth, GenesysConfig, NotifierConfig, Platform, Secret, StorageConfig, TenantConfig,
};
use um_crds::{
    ApiAuthType, MessagingSpec, NotifierDestination, SecretKeyRef, SecretRefs, Storage, Tenant,
    TenantLinks,
};

use crate::config::OperatorConfig;
use crate::genesys::{ClientCredentials, IntegrationSpec};
use crate::region::{self, GenesysEndpoints};
use crate::resolve::{ResolveError, Resolver, SecretSource};

pub use messaging::{ResolvedSecrets, Unresolved, messaging_config};

/// Genesys requires the webhook signature token to be longer than 15.
const MIN_WEBHOOK_TOKEN_LEN: usize = 16;

/// Everything the operator talks to Genesys Cloud with for one Tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct GenesysAccess {
    pub endpoints: GenesysEndpoints,
    pub credentials: ClientCredentials,
    pub integration: IntegrationSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTenant {
    /// With messaging, genesys and apiAuth parts; rendering splits them.
    pub config: TenantConfig,
    pub genesys: Option<GenesysAccess>,
}

/// What this version cannot serve of a Tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// A preview platform: declared in the API, no connector yet.
    Platform(Platform),
    /// A CX side other than genesysCloud (its `spec.cx` key).
    Cx(&'static str),
}

/// `None` when this version serves the Tenant; nothing is rendered or
/// registered for one it does not.
pub fn unsupported(spec: &um_crds::TenantSpec) -> Option<Unsupported> {
    let platform = spec.platform();
    if !platform.is_supported() {
        Some(Unsupported::Platform(platform))
    } else if spec.cx.genesys_cloud().is_none() {
        Some(Unsupported::Cx(spec.cx.key()))
    } else {
        None
    }
}

/// `<apiRoot>/<platform>/<key>`.
pub fn webhook_url(config: &OperatorConfig, tenant: &Tenant) -> String {
    format!(
        "{}{}",
        config.api_root,
        um_config::webhook_path(tenant.spec.platform(), &tenant.tenant_key())
    )
}

/// `<apiRoot>/openmessaging/<key>`.
pub fn openmessaging_webhook_url(config: &OperatorConfig, tenant: &Tenant) -> String {
    format!(
        "{}{}",
        config.api_root,
        um_config::openmessaging_webhook_path(&tenant.tenant_key())
    )
}

/// Telegram's `secret_token` alphabet and length (setWebhook).
fn valid_telegram_secret_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The pages the Tenant's connector serves for administrators (routes of
/// the platform's connector under the webhook URL); `None` for a platform
/// that serves none.
pub fn tenant_links(config: &OperatorConfig, tenant: &Tenant) -> Option<TenantLinks> {
    let base = webhook_url(config, tenant);
    let base = base.trim_end_matches('/');
    match tenant.spec.platform() {
        Platform::Line => Some(TenantLinks {
            add_friend_qr_code: Some(format!("{base}/qr.svg")),
            add_friend_link: Some(format!("{base}/friend-link")),
            ..TenantLinks::default()
        }),
        Platform::Teams => Some(TenantLinks {
            registration: Some(format!("{base}/register")),
            ..TenantLinks::default()
        }),
        _ => None,
    }
}

/// Resolves every Secret reference of the Tenant and builds the
/// configuration of each service that serves it; on failure returns every
/// reference that failed. `integration_id` is what the Tenant's status (or
/// this reconcile) knows.
pub fn resolve_tenant(
    config: &OperatorConfig,
    tenant: &Tenant,
    secrets: &dyn SecretSource,
    integration_id: Option<String>,
) -> Result<ResolvedTenant, Vec<ResolveError>> {
    let namespace = tenant.namespace().unwrap_or_default();
    let mut resolver = Resolver::new(secrets, &namespace);
    let values = resolve_references(tenant, &mut resolver);
    check_values(tenant, &values, &mut resolver);
    let errors = resolver.finish();
    if !errors.is_empty() {
        return Err(errors);
    }
    let unresolved = |err: messaging::Unresolved| {
        vec![ResolveError::InvalidSecretValue {
            field: "spec".into(),
            namespace: namespace.clone(),
            name: String::new(),
            key: String::new(),
            problem: err.to_string(),
        }]
    };

    let spec = &tenant.spec;
    let api_base_url = config.platform_api_base_url(spec.platform().as_str());
    let messaging =
        messaging::messaging_config(&spec.messaging, &values, api_base_url).map_err(unresolved)?;
    let (genesys, genesys_access) = match spec.cx.genesys_cloud() {
        Some(genesys) => {
            let (connector, access) =
                genesys_config(config, tenant, genesys, &values, integration_id)?;
            (Some(connector), Some(access))
        }
        None => (None, None),
    };
    Ok(ResolvedTenant {
        config: TenantConfig {
            key: tenant.tenant_key(),
            display_name: spec.display_name.clone(),
            platform: spec.platform(),
            subscription_id: spec.subscription_id.clone(),
            webhook_url: webhook_url(config, tenant),
            options: (&spec.messaging_options).into(),
            messaging,
            genesys,
            api_auth: Some(api_auth(&spec.api_auth, &values)),
            storage: spec.storage_ref.as_ref().map(|s| s.name.clone()),
        },
        genesys: genesys_access,
    })
}

/// Step 1: every reference of the Tenant. (The broker and Redis Secrets
/// are the installation's, beside the connectors in its namespace, not the
/// Tenant's business.)
fn resolve_references<S: SecretSource + ?Sized>(
    tenant: &Tenant,
    resolver: &mut Resolver<'_, S>,
) -> ResolvedSecrets {
    let mut values = ResolvedSecrets::new();
    for (field, reference) in tenant.spec.secret_refs() {
        if let Some(value) = resolver.resolve(&field, &reference.name, &reference.key) {
            values.insert(reference.clone(), value);
        }
    }
    values
}

/// Step 2: values that resolved but break a rule of the platform.
fn check_values<S: SecretSource + ?Sized>(
    tenant: &Tenant,
    values: &ResolvedSecrets,
    resolver: &mut Resolver<'_, S>,
) {
    let mut check =
        |field: &str, reference: &SecretKeyRef, valid: fn(&str) -> bool, problem: &str| {
            if let Some(value) = values.get(reference)
                && !valid(value.expose())
            {
                resolver.invalid(field, &reference.name, &reference.key, problem);
            }
        };
    if let Some(genesys) = tenant.spec.cx.genesys_cloud() {
        check(
            "spec.cx.genesysCloud.integration.webhookToken",
            &genesys.integration.webhook_token,
            |token| token.chars().count() >= MIN_WEBHOOK_TOKEN_LEN,
            "must be longer than 15 characters (Genesys Cloud's rule)",
        );
    }
    if let MessagingSpec::Telegram(telegram) = &tenant.spec.messaging
        && let Some(reference) = &telegram.webhook_secret_token
    {
        check(
            "spec.messaging.telegram.webhookSecretToken",
            reference,
            valid_telegram_secret_token,
            "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)",
        );
    }
}

/// Step 3: the gcloudcx connector's part and what the operator itself
/// talks to Genesys Cloud with.
fn genesys_config(
    config: &OperatorConfig,
    tenant: &Tenant,
    genesys: &um_crds::GenesysCloudSpec,
    values: &ResolvedSecrets,
    integration_id: Option<String>,
) -> Result<(GenesysConfig, GenesysAccess), Vec<ResolveError>> {
    let namespace = tenant.namespace().unwrap_or_default();
    let region = genesys.region.as_str();
    let endpoints = region::endpoints(genesys.region, &config.genesys_cloud);
    let value = |field: &str, reference: &SecretKeyRef| {
        values.get(reference).cloned().ok_or_else(|| {
            vec![ResolveError::SecretNotFound {
                field: field.to_owned(),
                namespace: namespace.clone(),
                name: reference.name.clone(),
            }]
        })
    };
    let client_secret = value(
        "spec.cx.genesysCloud.oauthClient.clientSecret",
        &genesys.oauth_client.client_secret,
    )?;
    let webhook_token = value(
        "spec.cx.genesysCloud.integration.webhookToken",
        &genesys.integration.webhook_token,
    )?;
    let access = GenesysAccess {
        endpoints: endpoints.clone(),
        credentials: ClientCredentials {
            client_id: genesys.oauth_client.client_id.clone(),
            client_secret: client_secret.clone(),
        },
        integration: IntegrationSpec {
            name: genesys.integration.name.clone(),
            webhook_url: openmessaging_webhook_url(config, tenant),
            webhook_token: webhook_token.clone(),
            supported_content_id: genesys.integration.supported_content_id.clone(),
        },
    };
    let connector = GenesysConfig {
        region: region.to_owned(),
        api_base_url: endpoints.api_base_url,
        login_base_url: endpoints.login_base_url,
        client_id: genesys.oauth_client.client_id.clone(),
        client_secret,
        integration_id,
        webhook_token,
        custom_data: genesys.custom_data.clone(),
        agent_name: genesys.agent_name.clone(),
        commander: (&genesys.commander).into(),
    };
    Ok((connector, access))
}

/// Step 4: the IVR REST API's authentication.
fn api_auth(spec: &um_crds::ApiAuthSpec, values: &ResolvedSecrets) -> ApiAuth {
    match spec.auth_type {
        ApiAuthType::None => ApiAuth::None,
        ApiAuthType::Basic => ApiAuth::Basic {
            username: spec.username.clone().unwrap_or_default(),
            password: spec
                .password
                .as_ref()
                .and_then(|r| values.get(r))
                .cloned()
                .unwrap_or_else(|| Secret::new("")),
        },
    }
}

pub fn resolve_storage(
    storage: &Storage,
    secrets: &dyn SecretSource,
) -> Result<StorageConfig, Vec<ResolveError>> {
    let namespace = storage.namespace().unwrap_or_default();
    let mut resolver = Resolver::new(secrets, &namespace);
    let kind = storage.spec.storage_type.as_str();
    let mut resolved = BTreeMap::new();
    for (field, reference) in storage.spec.secret_refs() {
        let path = format!("spec.{kind}.{field}");
        if let Some(value) = resolver.resolve(&path, &reference.name, &reference.key) {
            resolved.insert(field.to_owned(), value);
        }
    }
    let errors = resolver.finish();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StorageConfig {
        name: storage.name_any(),
        kind: storage.spec.storage_type.into(),
        default: storage.spec.default,
        purge_delay_seconds: u64::try_from(storage.spec.purge_delay_seconds).unwrap_or(0),
        settings: storage.spec.settings(),
        secrets: resolved,
    })
}

/// A NotifierDestination in the installation's namespace (`home`) hears
/// about everything; one elsewhere only about its namespace's Tenants.
pub fn resolve_notifier(
    notifier: &NotifierDestination,
    secrets: &dyn SecretSource,
    home: &str,
) -> Result<NotifierConfig, Vec<ResolveError>> {
    let namespace = notifier.namespace().unwrap_or_default();
    let mut resolver = Resolver::new(secrets, &namespace);
    let target = notifier.spec.target().and_then(|(field, reference)| {
        resolver.resolve(&format!("spec.{field}"), &reference.name, &reference.key)
    });
    let mut errors = resolver.finish();
    match target {
        Some(target) if errors.is_empty() => Ok(NotifierConfig {
            name: notifier.name_any(),
            kind: notifier.spec.notifier_type.into(),
            topic: notifier.spec.topic.into(),
            target,
            namespace: Some(namespace.clone()).filter(|ns| ns != home),
        }),
        _ => {
            if errors.is_empty() {
                // The CRD's CEL rules make this unreachable for objects the
                // apiserver accepted; say so rather than panic.
                errors.push(ResolveError::SecretNotFound {
                    field: "spec.url / spec.routingKey".into(),
                    namespace,
                    name: "(none set)".into(),
                });
            }
            Err(errors)
        }
    }
}

/// Storages of the namespace marked default, other than `name`.
pub fn other_defaults(storages: &[Storage], name: &str) -> Vec<String> {
    let mut others: Vec<String> = storages
        .iter()
        .filter(|s| {
            s.spec.default && s.name_any() != name && s.metadata.deletion_timestamp.is_none()
        })
        .map(ResourceExt::name_any)
        .collect();
    others.sort();
    others
}

/// The Secret names an object refers to (for the Secret watch's mapping).
pub fn tenant_secret_names(tenant: &Tenant) -> Vec<String> {
    tenant
        .spec
        .secret_refs()
        .into_iter()
        .map(|(_, r)| r.name.clone())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
