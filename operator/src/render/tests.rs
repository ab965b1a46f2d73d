use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret as KubeSecret;

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

/// The installation's namespace in these tests.
const HOME: &str = "um-system";

pub fn telegram_tenant(name: &str, bot_token: &str) -> TenantConfig {
    let key = um_config::tenant_key("shop", name);
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
    })
}

fn line_tenant_without_genesys() -> TenantConfig {
    let key = um_config::tenant_key("shop", "gamma");
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
    }))
}

/// (config, uses Genesys) of the three Tenants of namespace `shop`.
fn tenants() -> Vec<(TenantConfig, bool)> {
    vec![
        (telegram_tenant("beta", BOT_TOKEN_BETA), true),
        (telegram_tenant("acme", BOT_TOKEN_ACME), true),
        (line_tenant_without_genesys(), false),
    ]
}

fn plane(config: &OperatorConfig, tenants: &[(TenantConfig, bool)]) -> DesiredObjects {
    let services = services_in_use(config, tenants.iter().map(|(t, g)| (t.platform, *g)));
    render_data_plane(config, HOME, &services)
}

fn names<T: kube::Resource>(objects: &[T]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

fn parts(tenant: &TenantConfig, uses_genesys: bool) -> Vec<KubeSecret> {
    render_tenant_parts(&example(), HOME, "shop", tenant, uses_genesys)
}

fn part_json(secret: &KubeSecret) -> String {
    let data = secret.data.as_ref().unwrap();
    assert_eq!(data.len(), 1, "one key per part");
    String::from_utf8(data.values().next().unwrap().0.clone()).unwrap()
}

#[test]
fn one_connector_per_platform_in_use_plus_gcloudcx_in_the_installation_namespace() {
    let desired = plane(&example(), &tenants());
    assert_eq!(
        names(&desired.deployments),
        ["um-gcloudcx", "um-line", "um-telegram"]
    );
    assert_eq!(
        names(&desired.services),
        ["um-gcloudcx", "um-line", "um-telegram"]
    );
    assert_eq!(names(&desired.secrets), ["um-settings"]);
    // The example configuration disables autoscaling for telegram only.
    assert_eq!(names(&desired.autoscalers), ["um-gcloudcx", "um-line"]);
    for deployment in &desired.deployments {
        assert_eq!(deployment.metadata.namespace.as_deref(), Some(HOME));
        assert_eq!(
            deployment.metadata.owner_references, None,
            "shared by Tenants of many namespaces: swept by label, not owned"
        );
        assert_eq!(
            deployment.metadata.labels.as_ref().unwrap()[INSTANCE_LABEL],
            "um"
        );
    }
}

#[test]
fn the_shared_objects_depend_only_on_the_services_in_use() {
    let first = plane(&example(), &tenants());
    // A thousand more Telegram Tenants change nothing shared.
    let mut more = tenants();
    for i in 0..1000 {
        more.push((telegram_tenant(&format!("t{i}"), "1:x"), true));
    }
    more.reverse();
    let second = plane(&example(), &more);
    assert_eq!(first.deployments, second.deployments);
    assert_eq!(first.secrets, second.secrets);
    assert_eq!(first.ingress, second.ingress);
}

#[test]
fn two_installations_share_no_name_or_selector() {
    let second = OperatorConfig::parse(&format!(
        "instance: um-second\n{}",
        crate::config::tests::EXAMPLE
    ))
    .unwrap();
    let a = plane(&example(), &tenants());
    let b = plane(&second, &tenants());
    for (x, y) in a.deployments.iter().zip(&b.deployments) {
        assert_ne!(x.metadata.name, y.metadata.name);
        let selector = |d: &k8s_openapi::api::apps::v1::Deployment| {
            d.spec
                .as_ref()
                .unwrap()
                .selector
                .match_labels
                .clone()
                .unwrap()
        };
        assert_ne!(selector(x), selector(y));
    }
    assert_ne!(a.secrets[0].metadata.name, b.secrets[0].metadata.name);
    assert_eq!(
        b.ingress.unwrap().metadata.name.as_deref(),
        Some("um-second-ingress")
    );
}

#[test]
fn credentials_land_only_in_the_service_that_uses_them() {
    let acme = parts(&telegram_tenant("acme", BOT_TOKEN_ACME), true);
    assert_eq!(acme.len(), 2, "telegram and gcloudcx");
    let by_service = |secrets: &[KubeSecret], service: &str| -> String {
        let secret = secrets
            .iter()
            .find(|s| {
                s.metadata.labels.as_ref().unwrap()[um_config::layout::SERVICE_LABEL] == service
            })
            .unwrap();
        part_json(secret)
    };
    let telegram = by_service(&acme, "telegram");
    assert!(telegram.contains(BOT_TOKEN_ACME));
    assert!(!telegram.contains(CLIENT_SECRET) && !telegram.contains(WEBHOOK_TOKEN));
    let gcloudcx = by_service(&acme, "gcloudcx");
    assert!(gcloudcx.contains(CLIENT_SECRET) && gcloudcx.contains(WEBHOOK_TOKEN));
    assert!(!gcloudcx.contains(BOT_TOKEN_ACME));

    let gamma = parts(&line_tenant_without_genesys(), false);
    assert_eq!(gamma.len(), 1, "no Genesys Cloud: no gcloudcx part");
    assert!(by_service(&gamma, "line").contains(LINE_SECRET));

    // What the connector assembles from the parts it selects.
    let mut read: Vec<um_config::layout::Part> = Vec::new();
    for secret in acme
        .iter()
        .chain(&gamma)
        .chain(plane(&example(), &tenants()).secrets.iter())
    {
        let labels = secret.metadata.labels.as_ref().unwrap();
        let kind = part_of(labels).unwrap();
        let data = secret
            .data
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        read.push(um_config::layout::parse_part(kind, &data).unwrap());
    }
    let config = um_config::layout::assemble("telegram", &read);
    assert_eq!(config.tenants.keys().collect::<Vec<_>>(), ["shop.acme"]);
    assert_eq!(
        config.settings.default_commander_prefix.as_deref(),
        Some(">")
    );
    assert_eq!(
        config.settings.outbound_proxy, None,
        "empty proxy is no proxy"
    );
}

#[test]
fn a_tenant_part_names_its_tenant_and_is_small_whatever_the_installation_size() {
    let acme = parts(&telegram_tenant("acme", BOT_TOKEN_ACME), true);
    for secret in &acme {
        let meta = &secret.metadata;
        assert_eq!(meta.namespace.as_deref(), Some(HOME));
        assert_eq!(
            meta.annotations.as_ref().unwrap()[um_config::layout::TENANT_ANNOTATION],
            "shop.acme"
        );
        assert_eq!(
            meta.labels.as_ref().unwrap()[um_config::layout::TENANT_NAMESPACE_LABEL],
            "shop"
        );
        assert!(
            every_tenant_part_name(&example(), "shop.acme").contains(meta.name.as_ref().unwrap())
        );
        assert!(part_json(secret).len() < 4096);
    }
}

#[test]
fn deployment_runs_the_service_with_its_service_account_and_no_literal_credentials() {
    let desired = plane(&example(), &tenants());
    let deployment = desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("um-gcloudcx"))
        .unwrap();
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, None, "the HPA owns replicas");
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("um-connector"));
    assert_eq!(pod.volumes, None, "configuration comes through the API");
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
    assert_eq!(env["UM_CONFIG_SOURCE"].value.as_deref(), Some("kubernetes"));
    assert_eq!(env["UM_INSTANCE"].value.as_deref(), Some("um"));
    assert_eq!(env["UM_HTTP_PORT"].value.as_deref(), Some("8080"));
    assert_eq!(env["UM_LOG_LEVEL"].value.as_deref(), Some("INFO"));
    assert_eq!(
        env["UM_BUS_NAMESPACE"].value.as_deref(),
        Some("um"),
        "one bus namespace per installation"
    );
    let field = |name: &str| {
        env[name]
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path
            .clone()
    };
    assert_eq!(field("POD_IP"), "status.podIP");
    assert_eq!(field("POD_NAMESPACE"), "metadata.namespace");
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
    let literal_env = serde_json::to_string(&container.env).unwrap();
    for secret in [CLIENT_SECRET, WEBHOOK_TOKEN, BOT_TOKEN_ACME] {
        assert!(!literal_env.contains(secret));
    }
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
    };
    assert_eq!(
        probe_path(&container.readiness_probe).as_deref(),
        Some("/healthz/readiness")
    );
    assert_eq!(
        probe_path(&container.liveness_probe).as_deref(),
        Some("/healthz/liveness")
    );
    let limits = container
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits["cpu"].0, "50m");
    let selector = spec.selector.match_labels.as_ref().unwrap();
    assert_eq!(selector["app.kubernetes.io/name"], "um-gcloudcx");
    assert_eq!(selector[INSTANCE_LABEL], "um");
    let labels = deployment.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "um-operator");
    assert_eq!(labels["app.kubernetes.io/part-of"], "universal-messaging");
}

#[test]
fn per_service_settings_apply() {
    let desired = plane(&example(), &tenants());
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
    let desired = plane(&config, &tenants());
    assert_eq!(names(&desired.deployments), ["um-gcloudcx", "um-line"]);
}

#[test]
fn ingress_routes_each_path_to_its_service() {
    let desired = plane(&example(), &tenants());
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
    let desired = plane(&config, &tenants());
    assert!(!names(&desired.deployments).contains(&"um-api".to_owned()));
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
fn no_tenant_renders_nothing() {
    let desired = plane(&example(), &[]);
    assert!(
        desired.deployments.is_empty() && desired.secrets.is_empty() && desired.ingress.is_none()
    );
}

#[test]
fn max_inflight_requests_reaches_the_connector_only_when_set() {
    let env_of = |config: &OperatorConfig, service: &str| {
        render_connector_deployment(config, "um-system", service)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap()
    };
    let limit = |env: &[k8s_openapi::api::core::v1::EnvVar]| {
        env.iter()
            .find(|e| e.name == "UM_MAX_INFLIGHT_REQUESTS")
            .map(|e| e.value.clone().unwrap())
    };
    let mut config = example();
    assert_eq!(
        limit(&env_of(&config, "telegram")),
        None,
        "connector default"
    );
    config
        .services
        .entry("telegram".to_owned())
        .or_default()
        .max_inflight_requests = Some(16);
    assert_eq!(limit(&env_of(&config, "telegram")).as_deref(), Some("16"));
    assert_eq!(limit(&env_of(&config, "gcloudcx")), None);

    let retry_for = |env: &[k8s_openapi::api::core::v1::EnvVar]| {
        env.iter()
            .find(|e| e.name == "UM_RETRY_FOR_SECONDS")
            .map(|e| e.value.clone().unwrap())
    };
    assert_eq!(retry_for(&env_of(&config, "gcloudcx")), None);
    config
        .services
        .entry("gcloudcx".to_owned())
        .or_default()
        .retry_for_seconds = Some(3600);
    assert_eq!(
        retry_for(&env_of(&config, "gcloudcx")).as_deref(),
        Some("3600")
    );

    let allow = |env: &[k8s_openapi::api::core::v1::EnvVar]| {
        env.iter()
            .find(|e| e.name == "UM_FETCH_ALLOW")
            .map(|e| e.value.clone().unwrap())
    };
    assert_eq!(allow(&env_of(&config, "teams")), None);
    config
        .services
        .entry("teams".to_owned())
        .or_default()
        .fetch_allow = vec!["10.20.0.0/16".to_owned(), "files.internal".to_owned()];
    assert_eq!(
        allow(&env_of(&config, "teams")).as_deref(),
        Some("10.20.0.0/16,files.internal")
    );
}
