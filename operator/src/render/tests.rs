use std::collections::BTreeMap;

use um_config::{
    CommanderConfig, GenesysConfig, LineConfig, MessagingConfig, Platform, Secret, TelegramConfig,
    TenantConfig,
};

use super::*;
use crate::config::tests::example;

const BOT_TOKEN_ACME: &str = "111:acme-bot-token";
const BOT_TOKEN_BETA: &str = "222:beta-bot-token";
const CLIENT_SECRET: &str = "genesys-client-secret";
const WEBHOOK_TOKEN: &str = "genesys-webhook-token-0123";
const LINE_SECRET: &str = "line-channel-secret";

fn owner(name: &str) -> TenantOwner {
    TenantOwner {
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

pub fn telegram_tenant(name: &str, bot_token: &str) -> NamespaceTenant {
    let key = um_config::tenant_key("shop", name);
    NamespaceTenant {
        owner: owner(name),
        platform: Platform::Telegram,
        uses_genesys: true,
        config: Some(
            TenantConfig::new(
                key.clone(),
                name.to_uppercase(),
                Platform::Telegram,
                format!("https://um.example.com/telegram/{key}"),
            )
            .with_messaging(MessagingConfig::Telegram(TelegramConfig {
                bot_token: Secret::new(bot_token),
                webhook_secret_token: None,
                api_base_url: None,
            }))
            .with_genesys(GenesysConfig {
                region: "ap-northeast-1".into(),
                api_base_url: "https://api.mypurecloud.jp".into(),
                login_base_url: "https://login.mypurecloud.jp".into(),
                client_id: "client-id".into(),
                client_secret: Secret::new(CLIENT_SECRET),
                integration_id: Some(format!("integration-{name}")),
                webhook_token: Secret::new(WEBHOOK_TOKEN),
                custom_data: BTreeMap::new(),
                agent_name: None,
                commander: CommanderConfig::default(),
            }),
        ),
    }
}

fn line_tenant_without_genesys() -> NamespaceTenant {
    let key = um_config::tenant_key("shop", "gamma");
    NamespaceTenant {
        owner: owner("gamma"),
        platform: Platform::Line,
        uses_genesys: false,
        config: Some(
            TenantConfig::new(
                key.clone(),
                "Gamma",
                Platform::Line,
                format!("https://um.example.com/line/{key}"),
            )
            .with_messaging(MessagingConfig::Line(LineConfig {
                channel_id: Some("1650".into()),
                channel_secret: Secret::new(LINE_SECRET),
                channel_access_token: None,
                switcher: None,
                api_base_url: None,
            })),
        ),
    }
}

fn state() -> NamespaceState {
    NamespaceState {
        namespace: "shop".into(),
        tenants: vec![
            telegram_tenant("beta", BOT_TOKEN_BETA),
            telegram_tenant("acme", BOT_TOKEN_ACME),
            line_tenant_without_genesys(),
        ],
        notifiers: vec![],
    }
}

fn names<T: kube::Resource>(objects: &[T]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

fn owner_names(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| o.name.clone())
        .collect()
}

fn secret_json(desired: &DesiredObjects, name: &str) -> String {
    let secret = desired
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap();
    String::from_utf8(secret.data.as_ref().unwrap()["service.json"].0.clone()).unwrap()
}

#[test]
fn one_connector_per_platform_in_use_plus_gcloudcx() {
    let desired = render_namespace(&example(), &state());
    assert_eq!(
        names(&desired.deployments),
        ["um-gcloudcx", "um-line", "um-telegram"]
    );
    assert_eq!(
        names(&desired.services),
        ["um-gcloudcx", "um-line", "um-telegram"]
    );
    assert_eq!(
        names(&desired.secrets),
        ["um-gcloudcx-config", "um-line-config", "um-telegram-config"]
    );
    // The example configuration disables autoscaling for telegram only.
    assert_eq!(names(&desired.autoscalers), ["um-gcloudcx", "um-line"]);
}

#[test]
fn shared_objects_are_owned_by_every_tenant_that_uses_them() {
    let desired = render_namespace(&example(), &state());
    let telegram = desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("um-telegram"))
        .unwrap();
    assert_eq!(owner_names(&telegram.metadata), ["acme", "beta"]);
    let refs = telegram.metadata.owner_references.as_ref().unwrap();
    assert!(refs.iter().all(|r| r.kind == "Tenant"
        && r.api_version == TENANT_API_VERSION
        && r.controller.is_none()));
    assert_eq!(refs[0].uid, "uid-acme");
    let gcloudcx = desired
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("um-gcloudcx-config"))
        .unwrap();
    assert_eq!(
        owner_names(&gcloudcx.metadata),
        ["acme", "beta"],
        "gamma uses no Genesys Cloud"
    );
    let line = desired
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("um-line"))
        .unwrap();
    assert_eq!(owner_names(&line.metadata), ["gamma"]);
    assert_eq!(
        owner_names(&desired.ingress.as_ref().unwrap().metadata),
        ["acme", "beta", "gamma"]
    );
}

#[test]
fn credentials_land_only_in_the_service_that_uses_them() {
    let desired = render_namespace(&example(), &state());
    let telegram = secret_json(&desired, "um-telegram-config");
    assert!(telegram.contains(BOT_TOKEN_ACME) && telegram.contains(BOT_TOKEN_BETA));
    assert!(
        !telegram.contains(CLIENT_SECRET)
            && !telegram.contains(WEBHOOK_TOKEN)
            && !telegram.contains(LINE_SECRET)
    );
    let gcloudcx = secret_json(&desired, "um-gcloudcx-config");
    assert!(gcloudcx.contains(CLIENT_SECRET) && gcloudcx.contains(WEBHOOK_TOKEN));
    assert!(!gcloudcx.contains(BOT_TOKEN_ACME) && !gcloudcx.contains(LINE_SECRET));
    assert!(
        !gcloudcx.contains("shop.gamma"),
        "a pureConnect tenant is not gcloudcx's"
    );
    let line = secret_json(&desired, "um-line-config");
    assert!(
        line.contains(LINE_SECRET)
            && !line.contains(BOT_TOKEN_ACME)
            && !line.contains(CLIENT_SECRET)
    );
    // No service uses a Storage in this version: none gets one.
    for json in [&telegram, &gcloudcx, &line] {
        assert!(json.contains("\"storages\":[]"), "{json}");
    }
    let parsed = um_config::ServiceConfig::from_json(telegram.as_bytes()).unwrap();
    assert_eq!(parsed.service, "telegram");
    assert_eq!(
        parsed.tenants.keys().collect::<Vec<_>>(),
        ["shop.acme", "shop.beta"]
    );
    assert_eq!(
        parsed.settings.default_commander_prefix.as_deref(),
        Some(">")
    );
    assert_eq!(
        parsed.settings.outbound_proxy, None,
        "empty proxy is no proxy"
    );
}

#[test]
fn rendering_is_stable_whatever_the_tenant_order() {
    let first = render_namespace(&example(), &state());
    let mut reordered = state();
    reordered.tenants.reverse();
    let second = render_namespace(&example(), &reordered);
    assert_eq!(first.secrets, second.secrets);
    assert_eq!(first.deployments, second.deployments);
    assert_eq!(first.ingress, second.ingress);
}

#[test]
fn unresolved_tenant_keeps_its_connector_but_is_not_in_the_configuration() {
    let mut state = state();
    state.tenants[1].config = None; // acme
    let desired = render_namespace(&example(), &state);
    let telegram = secret_json(&desired, "um-telegram-config");
    assert!(!telegram.contains("shop.acme") && telegram.contains("shop.beta"));
    let deployment = desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("um-telegram"))
        .unwrap();
    assert_eq!(owner_names(&deployment.metadata), ["acme", "beta"]);
}

#[test]
fn deployment_runs_the_service_without_api_token_or_literal_credentials() {
    let desired = render_namespace(&example(), &state());
    let deployment = desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("um-gcloudcx"))
        .unwrap();
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, None, "the HPA owns replicas");
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/universal-messaging/um-connector:0.1.0")
    );
    assert_eq!(
        container.args.as_deref(),
        Some(&["gcloudcx".to_owned()][..])
    );
    let env: BTreeMap<_, _> = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.as_str(), e))
        .collect();
    assert_eq!(env["UM_SERVICE"].value.as_deref(), Some("gcloudcx"));
    assert_eq!(
        env["UM_CONFIG_DIR"].value.as_deref(),
        Some("/etc/um/config")
    );
    assert_eq!(env["UM_HTTP_PORT"].value.as_deref(), Some("8080"));
    assert_eq!(env["UM_LOG_LEVEL"].value.as_deref(), Some("INFO"));
    assert_eq!(
        env["UM_BUS_NAMESPACE"].value.as_deref(),
        Some("um.shop"),
        "the connectors of each Tenant namespace have their own queues"
    );
    let amqp = env["UM_AMQP_URL"]
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (amqp.name.as_str(), amqp.key.as_str()),
        ("um-rabbitmq", "url")
    );
    assert!(env["UM_AMQP_URL"].value.is_none() && env["UM_REDIS_URL"].value.is_none());
    let pod_ip = env["POD_IP"]
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap();
    assert_eq!(pod_ip.field_path, "status.podIP");
    let literal_env = serde_json::to_string(&container.env).unwrap();
    for secret in [CLIENT_SECRET, WEBHOOK_TOKEN, BOT_TOKEN_ACME] {
        assert!(!literal_env.contains(secret));
    }
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz/readiness")
    );
    assert_eq!(
        container
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz/liveness")
    );
    let volume = &pod.volumes.as_ref().unwrap()[0];
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("um-gcloudcx-config")
    );
    assert_eq!(
        container.volume_mounts.as_ref().unwrap()[0].mount_path,
        "/etc/um/config"
    );
    let limits = container
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits["cpu"].0, "50m");
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()["app.kubernetes.io/name"],
        "um-gcloudcx"
    );
    let labels = deployment.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "um-operator");
    assert_eq!(labels["app.kubernetes.io/part-of"], "universal-messaging");
}

#[test]
fn per_service_settings_apply() {
    let desired = render_namespace(&example(), &state());
    let telegram = desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("um-telegram"))
        .unwrap();
    assert_eq!(
        telegram.spec.as_ref().unwrap().replicas,
        Some(2),
        "autoscaling off: fixed replicas"
    );
    let env = telegram
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap();
    let level = env.iter().find(|e| e.name == "UM_LOG_LEVEL").unwrap();
    assert_eq!(level.value.as_deref(), Some("DEBUG"));
    let hpa = desired
        .autoscalers
        .iter()
        .find(|h| h.metadata.name.as_deref() == Some("um-line"))
        .unwrap();
    let spec = hpa.spec.as_ref().unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 10));
    assert_eq!(spec.scale_target_ref.name, "um-line");
    let target = &spec.metrics.as_ref().unwrap()[0]
        .resource
        .as_ref()
        .unwrap()
        .target;
    assert_eq!(target.average_utilization, Some(80));
}

#[test]
fn disabled_service_is_not_rendered() {
    let text = crate::config::tests::EXAMPLE
        .replace("telegram: {logging", "telegram: {enabled: false, logging");
    let config = OperatorConfig::parse(&text).unwrap();
    let desired = render_namespace(&config, &state());
    assert_eq!(names(&desired.deployments), ["um-gcloudcx", "um-line"]);
}

#[test]
fn ingress_routes_each_path_to_its_service() {
    let desired = render_namespace(&example(), &state());
    let ingress = desired.ingress.unwrap();
    assert_eq!(ingress.metadata.name.as_deref(), Some("um-ingress"));
    assert_eq!(ingress.metadata.annotations.as_ref().unwrap()["a"], "b");
    let spec = ingress.spec.unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    assert_eq!(
        spec.tls.as_ref().unwrap()[0].secret_name.as_deref(),
        Some("um-tls")
    );
    let rule = &spec.rules.as_ref().unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("um.example.com"));
    let routes: Vec<(String, String)> = rule
        .http
        .as_ref()
        .unwrap()
        .paths
        .iter()
        .map(|p| {
            (
                p.path.clone().unwrap(),
                p.backend.service.as_ref().unwrap().name.clone(),
            )
        })
        .collect();
    let expected = [
        ("/openmessaging", "um-gcloudcx"),
        ("/line", "um-line"),
        ("/telegram", "um-telegram"),
    ];
    assert_eq!(routes, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(
        rule.http
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .all(|p| p.path_type == "Prefix")
    );
}

#[test]
fn a_service_this_version_lacks_is_never_rendered_even_when_enabled() {
    let text =
        crate::config::tests::EXAMPLE.replace("services:\n", "services:\n  api: {enabled: true}\n");
    let config = OperatorConfig::parse(&text).unwrap();
    assert!(config.service_enabled("api"));
    let desired = render_namespace(&config, &state());
    assert!(!names(&desired.deployments).contains(&"um-api".to_owned()));
    assert!(!names(&desired.secrets).contains(&"um-api-config".to_owned()));
    let spec = desired.ingress.unwrap().spec.unwrap();
    let paths: Vec<_> = spec.rules.unwrap()[0]
        .http
        .as_ref()
        .unwrap()
        .paths
        .iter()
        .map(|p| p.path.clone().unwrap())
        .collect();
    assert!(!paths.contains(&"/api".to_owned()), "{paths:?}");
}

#[test]
fn empty_namespace_renders_nothing() {
    let desired = render_namespace(
        &example(),
        &NamespaceState {
            namespace: "empty".into(),
            ..NamespaceState::default()
        },
    );
    assert!(
        desired.deployments.is_empty() && desired.secrets.is_empty() && desired.ingress.is_none()
    );
}
