use serde_json::json;
use um_config::{ApiAuth, MessagingConfig};

use super::*;
use crate::config::tests::example;
use crate::resolve::tests::secrets;

pub fn tenant(name: &str, messaging: serde_json::Value, cx: serde_json::Value) -> Tenant {
    serde_json::from_value(json!({
        "apiVersion": "messaging.universal-messaging.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "generation": 2},
        "spec": {"displayName": "ACME", "messaging": messaging, "cx": cx}
    }))
    .unwrap()
}

/// A Tenant of a platform this version does not serve: the first sample
/// under `config/samples/preview/tenants/`, so no test names a platform
/// that may become supported.
pub fn preview_tenant(name: &str) -> Tenant {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples/preview/tenants");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let sample = documents
        .into_iter()
        .find(|doc| doc["kind"] == "Tenant")
        .expect("a Tenant in the first preview sample");
    let tenant = tenant(
        name,
        sample["spec"]["messaging"].clone(),
        sample["spec"]["cx"].clone(),
    );
    assert!(!tenant.spec.platform().is_supported(), "{:?}", files[0]);
    tenant
}

pub fn telegram_genesys(name: &str) -> Tenant {
    tenant(
        name,
        json!({"telegram": {"botToken": {"name": "acme-telegram", "key": "token"}}}),
        json!({"genesysCloud": {
            "region": "ap-northeast-1",
            "oauthClient": {"clientId": "cid", "clientSecret": {"name": "acme-genesys", "key": "clientSecret"}},
            "integration": {"name": "ACME Telegram", "webhookToken": {"name": "acme-genesys", "key": "webhookToken"}}
        }}),
    )
}

const BUS: [(&str, &[(&str, &str)]); 2] = [
    ("um-rabbitmq", &[("url", "amqp://guest:guest@127.0.0.1/")]),
    ("um-redis", &[("url", "redis://127.0.0.1/")]),
];

type SecretMap =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, k8s_openapi::ByteString>>;

/// Tenant Secrets plus the bus and Redis Secrets every Tenant needs.
pub fn with_bus(entries: &[(&str, &[(&str, &str)])]) -> SecretMap {
    let mut all = secrets(entries);
    all.extend(secrets(&BUS));
    all
}

fn all_secrets() -> SecretMap {
    with_bus(&[
        ("acme-telegram", &[("token", "111:bot")]),
        (
            "acme-genesys",
            &[
                ("clientSecret", "cs-value"),
                ("webhookToken", "webhook-token-0123456789"),
            ],
        ),
    ])
}

#[test]
fn resolves_a_telegram_genesys_tenant() {
    let resolved = resolve_tenant(
        &example(),
        &telegram_genesys("acme"),
        &all_secrets(),
        Some("int-1".into()),
    )
    .unwrap();
    let config = &resolved.config;
    assert_eq!(config.key, "shop.acme");
    assert_eq!(
        config.webhook_url,
        "https://um.example.com/telegram/shop.acme"
    );
    match config.messaging.as_ref().unwrap() {
        MessagingConfig::Telegram(telegram) => {
            assert_eq!(telegram.bot_token.expose(), "111:bot");
            // The connector's default (Telegram's own Bot API) applies.
            assert_eq!(telegram.api_base_url, None);
            assert_eq!(telegram.webhook_secret_token, None);
        }
        other => panic!("{other:?}"),
    }
    let genesys = config.genesys.as_ref().unwrap();
    assert_eq!(genesys.api_base_url, "https://api.mypurecloud.jp");
    assert_eq!(genesys.client_secret.expose(), "cs-value");
    assert_eq!(genesys.integration_id.as_deref(), Some("int-1"));
    assert_eq!(config.api_auth, Some(ApiAuth::None));
    let access = resolved.genesys.unwrap();
    assert_eq!(
        access.integration.webhook_url,
        "https://um.example.com/openmessaging/shop.acme"
    );
    assert_eq!(access.integration.name, "ACME Telegram");
    assert_eq!(access.credentials.client_id, "cid");
}

#[test]
fn reports_every_missing_secret() {
    let only_telegram = with_bus(&[("acme-telegram", &[("token", "111:bot")])]);
    let errors =
        resolve_tenant(&example(), &telegram_genesys("acme"), &only_telegram, None).unwrap_err();
    let fields: Vec<String> = errors
        .iter()
        .map(|e| match e {
            ResolveError::SecretNotFound { field, name, .. } => format!("{field}={name}"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "spec.cx.genesysCloud.oauthClient.clientSecret=acme-genesys",
            "spec.cx.genesysCloud.integration.webhookToken=acme-genesys"
        ]
    );
}

#[test]
fn the_broker_and_redis_secrets_are_not_the_tenants_business() {
    // They live beside the connectors in the installation's namespace; a
    // Tenant namespace holds only the business's own Secrets.
    let only_the_tenants = secrets(&[
        ("acme-telegram", &[("token", "111:bot")]),
        (
            "acme-genesys",
            &[
                ("clientSecret", "cs-value"),
                ("webhookToken", "webhook-token-0123456789"),
            ],
        ),
    ]);
    let resolved = resolve_tenant(
        &example(),
        &telegram_genesys("acme"),
        &only_the_tenants,
        None,
    )
    .expect("resolves without the installation's Secrets");
    assert_eq!(resolved.config.key, "shop.acme");
}

#[test]
fn short_webhook_token_is_refused_without_printing_it() {
    let short = with_bus(&[
        ("acme-telegram", &[("token", "111:bot")]),
        (
            "acme-genesys",
            &[("clientSecret", "cs"), ("webhookToken", "tooshort")],
        ),
    ]);
    let errors = resolve_tenant(&example(), &telegram_genesys("acme"), &short, None).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason(), "InvalidSecretValue");
    let text = errors[0].to_string();
    assert!(
        text.contains("longer than 15") && !text.contains("tooshort"),
        "{text}"
    );
}

#[test]
fn line_platform_carries_its_typed_settings_and_secrets() {
    let line = tenant(
        "gamma",
        json!({"line": {"channelId": "1650", "channelSecret": {"name": "line", "key": "secret"},
                        "channelAccessToken": {"name": "line", "key": "token"}}}),
        json!({"pureConnect": {"primaryUrl": "https://cic.example.com", "target": {"name": "Support", "type": "Workgroup"}}}),
    );
    let source = with_bus(&[(
        "line",
        &[("secret", "line-secret"), ("token", "line-token")],
    )]);
    let resolved = resolve_tenant(&example(), &line, &source, None).unwrap();
    assert!(resolved.genesys.is_none() && resolved.config.genesys.is_none());
    match resolved.config.messaging.unwrap() {
        MessagingConfig::Line(line) => {
            assert_eq!(line.channel_id.as_deref(), Some("1650"));
            assert_eq!(line.channel_secret.expose(), "line-secret");
            assert_eq!(
                line.channel_access_token.as_ref().map(Secret::expose),
                Some("line-token")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn simulator_endpoints_come_from_configuration() {
    let text = crate::config::tests::EXAMPLE
        .replace(
            "genesysCloud: {apiBaseUrl: \"\"",
            "genesysCloud: {apiBaseUrl: \"http://127.0.0.1:4000\"",
        )
        .replace(
            "platformApiBaseUrls: {telegram: \"\"}",
            "platformApiBaseUrls: {telegram: \"http://127.0.0.1:4001\"}",
        );
    let config = OperatorConfig::parse(&text).unwrap();
    let resolved =
        resolve_tenant(&config, &telegram_genesys("acme"), &all_secrets(), None).unwrap();
    assert_eq!(
        resolved.genesys.unwrap().endpoints.login_base_url,
        "http://127.0.0.1:4000"
    );
    match resolved.config.messaging.unwrap() {
        MessagingConfig::Telegram(telegram) => {
            assert_eq!(
                telegram.api_base_url.as_deref(),
                Some("http://127.0.0.1:4001")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn storage_and_notifier_resolution() {
    let storage: Storage = serde_json::from_value(json!({
        "apiVersion": "messaging.universal-messaging.io/v1alpha1", "kind": "Storage",
        "metadata": {"name": "s3", "namespace": "shop"},
        "spec": {"type": "s3", "default": true, "s3": {"region": "eu-west-1", "bucket": "acme-bucket",
                 "accessKeyId": {"name": "aws", "key": "id"}, "secretAccessKey": {"name": "aws", "key": "secret"}}}
    }))
    .unwrap();
    let errors = resolve_storage(&storage, &secrets(&[])).unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].to_string().contains("spec.s3.accessKeyId"),
        "{}",
        errors[0]
    );
    let resolved = resolve_storage(
        &storage,
        &secrets(&[("aws", &[("id", "AKIA"), ("secret", "shh")])]),
    )
    .unwrap();
    assert_eq!(resolved.kind, um_config::StorageKind::S3);
    assert!(resolved.default);
    assert_eq!(resolved.settings["bucket"], "acme-bucket");
    assert_eq!(resolved.secrets["secretAccessKey"].expose(), "shh");

    let notifier: NotifierDestination = serde_json::from_value(json!({
        "apiVersion": "messaging.universal-messaging.io/v1alpha1", "kind": "NotifierDestination",
        "metadata": {"name": "pd", "namespace": "shop"},
        "spec": {"type": "pagerDuty", "topic": "Subscriptions", "routingKey": {"name": "pd", "key": "key"}}
    }))
    .unwrap();
    let err = resolve_notifier(&notifier, &secrets(&[]), "um-system").unwrap_err();
    assert_eq!(err[0].reason(), "SecretNotFound");
    let pd = secrets(&[("pd", &[("key", "R0UT1NG")])]);
    let ok = resolve_notifier(&notifier, &pd, "um-system").unwrap();
    assert_eq!(
        ok.namespace.as_deref(),
        Some("shop"),
        "a business's destination"
    );
    let installation = resolve_notifier(&notifier, &pd, "shop").unwrap();
    assert_eq!(
        installation.namespace, None,
        "the installation's destination"
    );
    assert_eq!(
        (ok.kind, ok.topic),
        (
            um_config::NotifierKind::PagerDuty,
            um_config::NotifierTopic::Subscriptions
        )
    );
}

#[test]
fn other_defaults_lists_the_conflicting_storages() {
    let storage = |name: &str, default: bool| -> Storage {
        serde_json::from_value(json!({
            "apiVersion": "messaging.universal-messaging.io/v1alpha1", "kind": "Storage",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"type": "gcs", "default": default, "gcs": {"bucket": "bkt"}}
        }))
        .unwrap()
    };
    let all = vec![storage("a", true), storage("b", true), storage("c", false)];
    assert_eq!(other_defaults(&all, "a"), ["b"]);
    assert_eq!(other_defaults(&all, "c"), ["a", "b"]);
}

fn telegram_with_secret_token(name: &str) -> Tenant {
    tenant(
        name,
        json!({"telegram": {
            "botToken": {"name": "acme-telegram", "key": "token"},
            "webhookSecretToken": {"name": "acme-telegram", "key": "secretToken"}
        }}),
        serde_json::to_value(&telegram_genesys(name).spec.cx).unwrap(),
    )
}

#[test]
fn the_telegram_secret_token_is_carried_and_checked() {
    let genesys = (
        "acme-genesys",
        &[
            ("clientSecret", "cs-value"),
            ("webhookToken", "webhook-token-0123456789"),
        ][..],
    );
    let good = with_bus(&[
        (
            "acme-telegram",
            &[("token", "111:bot"), ("secretToken", "acme_own-token-2026")],
        ),
        genesys,
    ]);
    let resolved =
        resolve_tenant(&example(), &telegram_with_secret_token("acme"), &good, None).unwrap();
    match resolved.config.messaging.as_ref().unwrap() {
        MessagingConfig::Telegram(telegram) => assert_eq!(
            telegram.webhook_secret_token.as_ref().map(Secret::expose),
            Some("acme_own-token-2026")
        ),
        other => panic!("{other:?}"),
    }

    let bad = with_bus(&[
        (
            "acme-telegram",
            &[
                ("token", "111:bot"),
                ("secretToken", "has spaces & symbols!"),
            ],
        ),
        genesys,
    ]);
    let errors =
        resolve_tenant(&example(), &telegram_with_secret_token("acme"), &bad, None).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason(), "InvalidSecretValue");
    let text = errors[0].to_string();
    assert!(
        text.contains("spec.messaging.telegram.webhookSecretToken")
            && text.contains("A-Z")
            && !text.contains("has spaces"),
        "{text}"
    );
}
