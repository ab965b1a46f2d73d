//! Custom resources + their Secrets → the resolved configuration the
//! services read (`um_config`), and what the Genesys client needs. Pure:
//! Secrets come in through [`SecretSource`].

use std::collections::BTreeMap;

use kube::ResourceExt;
use um_config::{
    ApiAuth, GenesysConfig, MessagingConfig, NotifierConfig, Platform, Secret, StorageConfig,
    TenantConfig,
};
use um_crds::{
    ApiAuthType, MessagingSpec, NotifierDestination, SecretKeyRef, Storage, StorageType, Tenant,
    TenantLinks,
};

use crate::config::OperatorConfig;
use crate::genesys::{ClientCredentials, IntegrationSpec};
use crate::region::{self, GenesysEndpoints};
use crate::resolve::{ResolveError, Resolver, SecretSource};

/// Telegram's Bot API when the operator configuration points nowhere else.
const TELEGRAM_API: &str = "https://api.telegram.org";
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

/// Resolves every Secret reference of the Tenant; on failure returns all
/// that failed. `integration_id` is what the Tenant's status (or this
/// reconcile) knows.
pub fn resolve_tenant(
    config: &OperatorConfig,
    tenant: &Tenant,
    secrets: &dyn SecretSource,
    integration_id: Option<String>,
) -> Result<ResolvedTenant, Vec<ResolveError>> {
    let namespace = tenant.namespace().unwrap_or_default();
    let mut resolver = Resolver::new(secrets, &namespace);
    let mut values: BTreeMap<String, Secret> = BTreeMap::new();
    for (field, reference) in tenant.spec.secret_refs() {
        if let Some(value) = resolver.resolve(&field, &reference.name, &reference.key) {
            values.insert(field, value);
        }
    }
    // The connector pods read the bus and Redis URLs from these Secrets of
    // the Tenant's namespace; without them the pods cannot start, so say so
    // here rather than leave it to a Deployment that never becomes ready.
    for (field, reference) in [
        (
            "rabbitmq.urlSecretRef (operator configuration)",
            &config.rabbitmq.url_secret_ref,
        ),
        (
            "redis.urlSecretRef (operator configuration)",
            &config.redis.url_secret_ref,
        ),
    ] {
        resolver.resolve(field, &reference.name, &reference.key);
    }
    let spec = &tenant.spec;
    let platform = spec.platform();
    let messaging_prefix = format!("spec.messaging.{}.", spec.messaging.key());
    let genesys_spec = spec.cx.genesys_cloud();

    if let Some(genesys) = genesys_spec {
        let field = "spec.cx.genesysCloud.integration.webhookToken";
        if let Some(token) = values.get(field)
            && token.expose().chars().count() < MIN_WEBHOOK_TOKEN_LEN
        {
            let reference = &genesys.integration.webhook_token;
            resolver.invalid(
                field,
                &reference.name,
                &reference.key,
                "must be longer than 15 characters (Genesys Cloud's rule)",
            );
        }
    }
    if let MessagingSpec::Telegram(telegram) = &spec.messaging
        && let Some(reference) = &telegram.webhook_secret_token
    {
        let field = "spec.messaging.telegram.webhookSecretToken";
        if let Some(token) = values.get(field)
            && !valid_telegram_secret_token(token.expose())
        {
            resolver.invalid(
                field,
                &reference.name,
                &reference.key,
                "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)",
            );
        }
    }
    let errors = resolver.finish();
    if !errors.is_empty() {
        return Err(errors);
    }

    let api_base_url = config.platform_api_base_url(platform.as_str());
    let messaging = match platform {
        Platform::Telegram => MessagingConfig::Telegram {
            bot_token: values[&format!("{messaging_prefix}botToken")].clone(),
            api_base_url: api_base_url.unwrap_or_else(|| TELEGRAM_API.to_owned()),
            webhook_secret_token: values
                .get(&format!("{messaging_prefix}webhookSecretToken"))
                .cloned(),
        },
        _ => MessagingConfig::Generic {
            settings: spec.messaging.settings(),
            secrets: values
                .iter()
                .filter_map(|(field, value)| {
                    Some((
                        field.strip_prefix(&messaging_prefix)?.to_owned(),
                        value.clone(),
                    ))
                })
                .collect(),
            api_base_url,
        },
    };

    let mut genesys_config = None;
    let mut genesys_access = None;
    if let Some(genesys) = genesys_spec {
        let region = genesys.region.as_str();
        let endpoints = region::endpoints(region, &config.genesys_cloud).map_err(|err| {
            vec![ResolveError::InvalidSecretValue {
                field: "spec.cx.genesysCloud.region".into(),
                namespace: namespace.clone(),
                name: String::new(),
                key: String::new(),
                problem: err.to_string(),
            }]
        })?;
        let client_secret = values["spec.cx.genesysCloud.oauthClient.clientSecret"].clone();
        let webhook_token = values["spec.cx.genesysCloud.integration.webhookToken"].clone();
        genesys_access = Some(GenesysAccess {
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
        });
        genesys_config = Some(GenesysConfig {
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
        });
    }

    let api_auth = match spec.api_auth.auth_type {
        ApiAuthType::None => ApiAuth::None,
        ApiAuthType::Basic => ApiAuth::Basic {
            username: spec.api_auth.username.clone().unwrap_or_default(),
            password: values
                .get("spec.apiAuth.password")
                .cloned()
                .unwrap_or_else(|| Secret::new("")),
        },
    };

    Ok(ResolvedTenant {
        config: TenantConfig {
            key: tenant.tenant_key(),
            display_name: spec.display_name.clone(),
            platform,
            subscription_id: spec.subscription_id.clone(),
            webhook_url: webhook_url(config, tenant),
            options: (&spec.messaging_options).into(),
            messaging: Some(messaging),
            genesys: genesys_config,
            api_auth: Some(api_auth),
            storage: spec.storage_ref.as_ref().map(|s| s.name.clone()),
        },
        genesys: genesys_access,
    })
}

/// The Secret references of a Storage's active type, with field names.
pub fn storage_secret_refs(storage: &Storage) -> Vec<(&'static str, &SecretKeyRef)> {
    let spec = &storage.spec;
    let mut refs: Vec<(&'static str, Option<&SecretKeyRef>)> = Vec::new();
    match spec.storage_type {
        StorageType::S3 => {
            if let Some(s3) = &spec.s3 {
                refs.push(("accessKeyId", s3.access_key_id.as_ref()));
                refs.push(("secretAccessKey", s3.secret_access_key.as_ref()));
            }
        }
        StorageType::AzureBlob => {
            if let Some(azure) = &spec.azure_blob {
                refs.push(("accountKey", Some(&azure.account_key)));
            }
        }
        StorageType::Gcs => {
            if let Some(gcs) = &spec.gcs {
                refs.push(("serviceAccountKey", gcs.service_account_key.as_ref()));
            }
        }
        StorageType::Box => {
            if let Some(b) = &spec.box_ {
                refs.push(("config", Some(&b.config)));
            }
        }
        StorageType::Dropbox => {
            if let Some(dropbox) = &spec.dropbox {
                refs.push(("appSecret", Some(&dropbox.app_secret)));
                refs.push(("refreshToken", Some(&dropbox.refresh_token)));
            }
        }
    }
    refs.into_iter()
        .filter_map(|(field, r)| Some((field, r?)))
        .collect()
}

pub fn resolve_storage(
    storage: &Storage,
    secrets: &dyn SecretSource,
) -> Result<StorageConfig, Vec<ResolveError>> {
    let namespace = storage.namespace().unwrap_or_default();
    let mut resolver = Resolver::new(secrets, &namespace);
    let kind = storage.spec.storage_type.as_str();
    let mut resolved = BTreeMap::new();
    for (field, reference) in storage_secret_refs(storage) {
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
        kind: kind.to_owned(),
        default: storage.spec.default,
        purge_delay_seconds: u64::try_from(storage.spec.purge_delay_seconds).unwrap_or(0),
        settings: storage.spec.settings(),
        secrets: resolved,
    })
}

pub fn resolve_notifier(
    notifier: &NotifierDestination,
    secrets: &dyn SecretSource,
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
            kind: notifier.spec.notifier_type.as_str().to_owned(),
            topic: notifier.spec.topic.as_str().to_owned(),
            target,
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
