//! The Tenant reconcile without a cluster: a fake API server (a tower
//! service behind a real `kube::Client`) answers from fixtures and records
//! every request, the Genesys Cloud simulator runs in-process on loopback.
//! Each scenario asserts the requests one reconcile makes (what it applies,
//! deletes, writes into status, registers at Genesys); stage 40 keeps only
//! what needs a real apiserver.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::{Value, json};
use um_crds::Tenant;
use um_simulators::genesys::{CreateCompletion, GenesysOptions, GenesysSimulator};

use super::{Context, ReconcileError, tenant};
use crate::config::OperatorConfig;
use crate::metrics::Metrics;

const CLIENT_ID: &str = "cid";
const CLIENT_SECRET: &str = "cs-value";
const WEBHOOK_TOKEN: &str = "webhook-token-0123456789";
const BOT_TOKEN: &str = "111:bot";
/// The installation's namespace.
const HOME: &str = "um-system";

/// One request the reconcile made.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    body: Value,
}

impl Recorded {
    fn is(&self, method: &Method, path_suffix: &str) -> bool {
        self.method == *method && self.path.ends_with(path_suffix)
    }
}

/// What the fake apiserver holds: Secrets of the namespace, the objects the
/// operator manages (for the orphan sweep), the Tenant it answers PATCHes
/// of Tenants with.
#[derive(Default)]
struct FakeApi {
    secrets: Vec<Value>,
    managed_deployments: Vec<String>,
    tenant: Value,
    /// Applies of objects whose path contains this are refused with this
    /// code, reason and message (a quota, an admission policy).
    refuse: Option<(&'static str, u16, &'static str, String)>,
    requests: Mutex<Vec<Recorded>>,
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

impl FakeApi {
    fn respond(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        if let Some((fragment, code, reason, message)) = &self.refuse
            && *method == Method::PATCH
            && path.contains(fragment)
        {
            let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                "code": code, "reason": reason, "message": message});
            return (
                StatusCode::from_u16(*code).unwrap_or(StatusCode::FORBIDDEN),
                status,
            );
        }
        if *method == Method::GET && path.contains("/secrets/") {
            let name = path.rsplit('/').next().unwrap_or_default();
            return match self.secrets.iter().find(|s| s["metadata"]["name"] == name) {
                Some(secret) => (StatusCode::OK, secret.clone()),
                None => (
                    StatusCode::NOT_FOUND,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                           "code": 404, "reason": "NotFound", "message": format!("secrets \"{name}\" not found")}),
                ),
            };
        }
        (StatusCode::OK, self.answer(method, path, query, body))
    }

    fn answer(&self, method: &Method, path: &str, query: &str, body: &Value) -> Value {
        let last = path.rsplit('/').next().unwrap_or_default();
        match *method {
            // list_metadata of the orphan sweep.
            Method::GET if last == "deployments" && query.contains("labelSelector") => {
                let items = self
                    .managed_deployments
                    .iter()
                    .map(|name| {
                        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                               "metadata": {"name": name, "namespace": HOME}})
                    })
                    .collect();
                list("PartialObjectMetadataList", items)
            }
            Method::GET => list("List", Vec::new()),
            Method::PATCH if path.contains("/tenants/") => {
                let mut tenant = self.tenant.clone();
                if let Some(status) = body.get("status") {
                    tenant["status"] = status.clone();
                }
                if path.ends_with("/status") {
                    return tenant;
                }
                // The finalizer helper's JSON patch: answer with it applied.
                if let Some(ops) = body.as_array() {
                    for op in ops {
                        if op["path"] == "/metadata/finalizers" {
                            tenant["metadata"]["finalizers"] = op["value"].clone();
                        }
                    }
                }
                tenant
            }
            Method::PATCH if path.contains("/deployments/") => {
                let mut deployment = body.clone();
                deployment["status"] = json!({"readyReplicas": 1, "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
                ]});
                deployment
            }
            Method::DELETE => json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
            _ => body.clone(),
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn applied(&self, kind_path: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method == Method::PATCH && r.path.contains(kind_path))
            .filter_map(|r| r.path.rsplit('/').next().map(str::to_owned))
            .collect()
    }

    /// (reason, note) of the Events published.
    fn events(&self) -> Vec<(String, String)> {
        self.requests()
            .iter()
            .filter(|r| r.method == Method::POST && r.path.ends_with("/events"))
            .map(|r| {
                (
                    r.body["reason"].as_str().unwrap_or_default().to_owned(),
                    r.body["note"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn finalizer_removed(&self) -> bool {
        self.requests()
            .last()
            .filter(|last| last.is(&Method::PATCH, "/tenants/acme"))
            .is_some_and(|last| {
                last.body.as_array().into_iter().flatten().any(|op| {
                    op["op"] == "remove"
                        && op["path"]
                            .as_str()
                            .is_some_and(|p| p.starts_with("/metadata/finalizers"))
                })
            })
    }

    fn status_written(&self) -> Value {
        self.requests()
            .iter()
            .rev()
            .find(|r| r.is(&Method::PATCH, "/status"))
            .map(|r| r.body["status"].clone())
            .expect("a status was written")
    }
}

fn client(api: Arc<FakeApi>) -> kube::Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let api = api.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await?;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            let (status, answer) = api.respond(&parts.method, &path, &query, &body);
            api.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Recorded {
                    method: parts.method,
                    path,
                    body,
                });
            let mut response = Response::new(Body::from(answer.to_string().into_bytes()));
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok::<_, kube::Error>(response)
        }
    });
    kube::Client::new(service, "default")
}

fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    use base64::Engine;
    let data: BTreeMap<&str, String> = data
        .iter()
        .map(|(k, v)| (*k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"}, "data": data})
}

fn all_secrets() -> Vec<Value> {
    vec![
        secret("acme-telegram", &[("token", BOT_TOKEN)]),
        secret(
            "acme-genesys",
            &[
                ("clientSecret", CLIENT_SECRET),
                ("webhookToken", WEBHOOK_TOKEN),
            ],
        ),
    ]
}

fn with_finalizer(mut tenant: Tenant) -> Tenant {
    tenant.metadata.finalizers = Some(vec![tenant::FINALIZER.to_owned()]);
    tenant
}

async fn genesys(secret: &str) -> GenesysSimulator {
    GenesysSimulator::start(
        GenesysOptions {
            create_completion: CreateCompletion::Immediate,
            rate_limit_per_minute: 0,
            ..GenesysOptions::default()
        }
        .with_client(CLIENT_ID, secret),
    )
    .await
    .expect("the Genesys simulator starts")
}

fn config(sim: &GenesysSimulator) -> OperatorConfig {
    let text = crate::config::tests::EXAMPLE.replace(
        "genesysCloud: {apiBaseUrl: \"\", loginBaseUrl: \"\"}",
        &format!(
            "genesysCloud: {{apiBaseUrl: \"{0}\", loginBaseUrl: \"{0}\"}}",
            sim.base_url()
        ),
    );
    let config = OperatorConfig::parse(&text).expect("the example configuration parses");
    assert!(
        config
            .genesys_cloud
            .api_base_url
            .starts_with("http://127.0.0.1"),
        "the simulator's URL replaced the example's endpoints"
    );
    config
}

/// Runs one reconcile of `tenant` against `api` and the simulator.
async fn reconcile(
    api: &Arc<FakeApi>,
    sim: &GenesysSimulator,
    tenant: Tenant,
) -> Result<Action, ReconcileError> {
    reconcile_with(api, config(sim), tenant).await
}

async fn reconcile_with(
    api: &Arc<FakeApi>,
    config: OperatorConfig,
    tenant: Tenant,
) -> Result<Action, ReconcileError> {
    let ctx = context(api, config, &tenant, None);
    tenant::reconcile(Arc::new(tenant), ctx).await
}

/// A Deployment of the data plane as the apiserver reports it when its
/// pods are ready.
fn available(name: &str) -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": HOME},
        "status": {"readyReplicas": 1, "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ]}
    }))
    .expect("a Deployment")
}

/// The context of one reconcile: the fake API, the Tenant in the store, the
/// data plane's connectors available, and the data plane's last refusal.
fn context(
    api: &Arc<FakeApi>,
    config: OperatorConfig,
    tenant: &Tenant,
    refusal: Option<String>,
) -> Arc<Context> {
    let client = client(api.clone());
    let (store, mut writer) = reflector::store::<Tenant>();
    writer.apply_watcher_event(&watcher::Event::Apply(tenant.clone()));
    let (storages, _) = reflector::store::<um_crds::Storage>();
    let mut plane = super::data_plane::DataPlane::build(HOME);
    for name in ["um-telegram", "um-gcloudcx"] {
        plane
            .deployment_writer
            .apply_watcher_event(&watcher::Event::Apply(available(name)));
    }
    plane.plane.set_refusal(refusal);
    let reporter = Reporter {
        controller: "um-operator-test".into(),
        instance: None,
    };
    Arc::new(Context::new(
        client,
        Arc::new(config),
        reporter,
        Arc::new(Metrics::default()),
        reqwest::Client::new(),
        super::Stores {
            tenants: store,
            storages,
        },
        plane.plane,
    ))
}

/// Names of the Tenant's configuration Secrets for these services.
fn parts_of(key: &str, services: &[&str]) -> Vec<String> {
    services
        .iter()
        .map(|service| um_config::layout::tenant_part_name("um", service, key))
        .collect()
}

fn fake_api(tenant: &Tenant, secrets: Vec<Value>) -> Arc<FakeApi> {
    Arc::new(FakeApi {
        secrets,
        tenant: serde_json::to_value(tenant).unwrap_or_default(),
        ..FakeApi::default()
    })
}

fn condition(status: &Value, type_: &str) -> String {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_tenant_first_gets_its_finalizer_and_nothing_else() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = crate::model::tests::telegram_genesys("acme");
    let api = fake_api(&tenant, all_secrets());
    reconcile(&api, &sim, tenant).await.expect("reconciled");
    let requests = api.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].is(&Method::PATCH, "/tenants/acme"));
    assert!(
        requests[0].body.to_string().contains(tenant::FINALIZER),
        "{:?}",
        requests[0].body
    );
    assert!(
        sim.integrations().is_empty(),
        "no integration before the finalizer"
    );
}

#[tokio::test]
async fn creates_the_integration_applies_the_connectors_and_reports_ready() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    let action = reconcile(&api, &sim, tenant.clone())
        .await
        .expect("reconciled");
    // Ready: the next look is the long resync, spread by uid; nothing polls.
    assert_eq!(
        action,
        Action::requeue(super::resync_after(tenant.metadata.uid.as_deref()))
    );
    let after = super::resync_after(tenant.metadata.uid.as_deref());
    assert!(after >= super::RESYNC && after < super::RESYNC + std::time::Duration::from_secs(3600));

    let integrations = sim.integrations();
    assert_eq!(integrations.len(), 1);
    assert_eq!(integrations[0].name, "ACME Telegram");
    assert_eq!(integrations[0].secret_token, WEBHOOK_TOKEN);
    assert_eq!(
        integrations[0].webhook_url,
        "https://um.example.com/openmessaging/shop.acme"
    );
    // The Tenant writes its own configuration in the installation's
    // namespace, and nothing shared (the data plane's loop does that).
    assert!(api.applied("/deployments/").is_empty());
    assert_eq!(
        api.applied(&format!("/namespaces/{HOME}/secrets/")),
        parts_of("shop.acme", &["telegram", "gcloudcx"])
    );
    let secret_reads: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.path.contains("/secrets"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        secret_reads,
        [
            "/api/v1/namespaces/shop/secrets/acme-genesys",
            "/api/v1/namespaces/shop/secrets/acme-telegram"
        ],
        "only the Secrets the Tenant names, never a list"
    );
    let telegram_part = parts_of("shop.acme", &["telegram"]).remove(0);
    let telegram_config = api
        .requests()
        .into_iter()
        .find(|r| r.is(&Method::PATCH, &format!("/secrets/{telegram_part}")))
        .expect("the telegram configuration applied");
    assert!(
        !telegram_config.body.to_string().contains(CLIENT_SECRET),
        "the platform connector never gets the Genesys credentials"
    );
    let status = api.status_written();
    assert_eq!(condition(&status, "Ready"), "True/Ready", "{status:#}");
    assert_eq!(condition(&status, "Supported"), "True/Supported");
    assert_eq!(status["integrationId"], integrations[0].id.as_str());
    assert!(
        !status.to_string().contains(CLIENT_SECRET) && !status.to_string().contains(BOT_TOKEN),
        "no credential in status"
    );
}

#[tokio::test]
async fn a_new_tenant_announces_milestones_only_and_an_unchanged_one_rewrites_nothing() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    let ctx = context(&api, config(&sim), &tenant, None);
    tenant::reconcile(Arc::new(tenant.clone()), ctx.clone())
        .await
        .expect("first");
    let reasons: Vec<String> = api.events().into_iter().map(|(reason, _)| reason).collect();
    assert_eq!(reasons, ["Registered", "Ready"], "one Event per milestone");
    let parts = api.applied(&format!("/namespaces/{HOME}/secrets/"));
    assert_eq!(parts.len(), 2);

    // Requeued as it is now (a connector became available, a resync).
    let mut again = tenant;
    again.status = serde_json::from_value(api.status_written()).ok();
    tenant::reconcile(Arc::new(again), ctx.clone())
        .await
        .expect("second");
    assert_eq!(
        api.applied(&format!("/namespaces/{HOME}/secrets/")),
        parts,
        "configuration Secrets not written again"
    );
    assert_eq!(api.events().len(), 2, "no new Event");
    assert_eq!(sim.integrations().len(), 1);

    // Deleted by someone else: written again on the next reconcile.
    ctx.data_plane.forget(&parts[0]);
    let mut third = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    third.status = serde_json::from_value(api.status_written()).ok();
    tenant::reconcile(Arc::new(third), ctx)
        .await
        .expect("third");
    assert_eq!(
        api.applied(&format!("/namespaces/{HOME}/secrets/")).len(),
        3
    );
}

#[tokio::test]
async fn a_recorded_integration_is_updated_not_created_again() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    reconcile(&api, &sim, tenant.clone()).await.expect("first");
    let id = sim.integrations()[0].id.clone();

    let mut renamed = tenant;
    renamed.status = Some(um_crds::TenantStatus {
        integration_id: Some(id.clone()),
        ..Default::default()
    });
    let mut spec = serde_json::to_value(&renamed.spec).unwrap_or_default();
    spec["cx"]["genesysCloud"]["integration"]["name"] = json!("ACME Telegram (renamed)");
    renamed.spec = serde_json::from_value(spec).expect("a spec");
    let api = fake_api(&renamed, all_secrets());
    reconcile(&api, &sim, renamed).await.expect("second");
    let integrations = sim.integrations();
    assert_eq!(integrations.len(), 1, "updated in place");
    assert_eq!(integrations[0].id, id);
    assert_eq!(integrations[0].name, "ACME Telegram (renamed)");
}

#[tokio::test]
async fn an_existing_integration_of_the_same_name_is_adopted() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    reconcile(&fake_api(&tenant, all_secrets()), &sim, tenant.clone())
        .await
        .expect("first");
    let id = sim.integrations()[0].id.clone();
    // Same Tenant, its status lost (a restore from backup): no second one.
    let api = fake_api(&tenant, all_secrets());
    reconcile(&api, &sim, tenant).await.expect("second");
    assert_eq!(sim.integrations().len(), 1);
    assert_eq!(api.status_written()["integrationId"], id.as_str());
}

#[tokio::test]
async fn a_missing_secret_is_named_and_nothing_is_registered() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let without_genesys: Vec<Value> = all_secrets()
        .into_iter()
        .filter(|s| s["metadata"]["name"] != "acme-genesys")
        .collect();
    let api = fake_api(&tenant, without_genesys);
    reconcile(&api, &sim, tenant).await.expect("reconciled");
    assert!(sim.integrations().is_empty());
    assert_eq!(
        sim.count_requests("POST", "/oauth/token"),
        0,
        "no Genesys call"
    );
    let status = api.status_written();
    assert_eq!(
        condition(&status, "CredentialsResolved"),
        "False/SecretNotFound"
    );
    assert_eq!(condition(&status, "Ready"), "False/NotReady");
    let message = status.to_string();
    assert!(
        message.contains("acme-genesys")
            && message.contains("spec.cx.genesysCloud.oauthClient.clientSecret")
    );
}

#[tokio::test]
async fn wrong_genesys_credentials_are_reported_and_retried() {
    let sim = genesys("another-secret").await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    let err = reconcile(&api, &sim, tenant)
        .await
        .expect_err("a Genesys failure");
    assert_eq!(err.metric_label(), "InvalidCredentials");
    let status = api.status_written();
    assert_eq!(
        condition(&status, "IntegrationRegistered"),
        "False/InvalidCredentials"
    );
    assert!(!status.to_string().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn a_genesys_rate_limit_is_retried_after_the_delay_genesys_asked_for() {
    let sim = genesys(CLIENT_SECRET).await;
    sim.fail_next_with_retry_after(um_simulators::genesys::FaultTarget::Integrations, 429, 5, 7);
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    let err = reconcile(&api, &sim, tenant)
        .await
        .expect_err("rate limited");
    assert_eq!(err.metric_label(), "RateLimited");
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));
    assert_eq!(
        condition(&api.status_written(), "IntegrationRegistered"),
        "False/RateLimited"
    );
}

#[tokio::test]
async fn deletion_removes_the_integration_then_the_finalizer() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    reconcile(&fake_api(&tenant, all_secrets()), &sim, tenant.clone())
        .await
        .expect("created");
    let id = sim.integrations()[0].id.clone();

    let mut deleting = tenant;
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    deleting.status = Some(um_crds::TenantStatus {
        integration_id: Some(id.clone()),
        ..Default::default()
    });
    let api = fake_api(&deleting, all_secrets());
    reconcile(&api, &sim, deleting).await.expect("cleaned up");
    assert_eq!(sim.deleted_integration_ids(), [id]);
    // Its configuration goes; the shared connectors are the data plane's.
    let deleted: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .filter_map(|r| r.path.rsplit('/').next().map(str::to_owned))
        .collect();
    for part in parts_of("shop.acme", &["telegram", "gcloudcx"]) {
        assert!(deleted.contains(&part), "{deleted:?}");
    }
    assert!(
        !deleted.iter().any(|name| name == "um-telegram"),
        "{deleted:?}"
    );
    let last = api.requests().last().cloned().expect("requests");
    assert!(last.is(&Method::PATCH, "/tenants/acme"), "{last:?}");
    let removes_finalizer = last.body.as_array().into_iter().flatten().any(|op| {
        op["op"] == "remove"
            && op["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/metadata/finalizers"))
    });
    assert!(
        removes_finalizer,
        "the finalizer is removed last: {:?}",
        last.body
    );
}

#[tokio::test]
async fn a_tenant_of_a_preview_platform_is_not_ready_and_gets_nothing() {
    let sim = genesys(CLIENT_SECRET).await;
    let preview = with_finalizer(crate::model::tests::preview_tenant("wx"));
    let name = preview.spec.platform().display_name();
    let api = fake_api(&preview, all_secrets());
    let action = reconcile(&api, &sim, preview).await.expect("reconciled");
    assert_eq!(action, Action::await_change());
    assert!(
        sim.integrations().is_empty(),
        "nothing registered at Genesys"
    );
    assert!(api.applied("/deployments/").is_empty());
    assert!(api.applied("/secrets/").is_empty());
    let status = api.status_written();
    assert_eq!(condition(&status, "Ready"), "False/PlatformNotSupported");
    assert!(status.to_string().contains(name), "{status}");
}

fn reconciled_message(status: &Value) -> String {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Reconciled")
        .map(|c| c["message"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_configuration_secret_the_apiserver_refuses_is_named_in_status_and_an_event() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let part = parts_of("shop.acme", &["telegram"]).remove(0);
    // What a ValidatingAdmissionPolicy answers; long, as real ones can be.
    let message = format!(
        "secrets \"{part}\" is forbidden: ValidatingAdmissionPolicy 'no-secrets' denied request: {}",
        "x".repeat(3000)
    );
    let api = Arc::new(FakeApi {
        refuse: Some(("/secrets/um-telegram-t-", 403, "Forbidden", message)),
        ..Arc::into_inner(fake_api(&tenant, all_secrets())).unwrap_or_default()
    });
    let err = reconcile(&api, &sim, tenant)
        .await
        .expect_err("the refusal fails the reconcile, which backs off");
    assert_eq!(err.metric_label(), "Apply");

    let status = api.status_written();
    assert_eq!(
        condition(&status, "Reconciled"),
        "False/ApplyFailed",
        "{status:#}"
    );
    assert_eq!(condition(&status, "Ready"), "False/NotReady");
    let reconciled = reconciled_message(&status);
    assert!(
        reconciled.starts_with(&format!(
            "applying Secret {HOME}/{part}: the apiserver answered 403 Forbidden: secrets \"{part}\" is forbidden: ValidatingAdmissionPolicy 'no-secrets'"
        )),
        "{reconciled}"
    );
    assert!(reconciled.len() <= crate::conditions::NOTE_LIMIT);

    let events = api.events();
    let warning = events
        .iter()
        .find(|(reason, _)| reason == "ApplyFailed")
        .unwrap_or_else(|| panic!("a Warning Event for the refusal: {events:?}"));
    assert!(
        warning.1.contains(&format!("Secret {HOME}/{part}")),
        "{}",
        warning.1
    );
    assert!(
        events
            .iter()
            .all(|(_, note)| note.len() <= crate::conditions::NOTE_LIMIT),
        "every note fits the apiserver's 1 KiB limit"
    );
    assert!(!status.to_string().contains(CLIENT_SECRET) && !status.to_string().contains(BOT_TOKEN));
}

#[tokio::test]
async fn a_refused_data_plane_shows_in_every_tenant_it_serves() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let message =
        "deployments.apps \"um-telegram\" is forbidden: exceeded quota: compute".to_owned();
    let api = Arc::new(FakeApi {
        refuse: Some(("/deployments/um-telegram", 403, "Forbidden", message)),
        ..Arc::into_inner(fake_api(&tenant, all_secrets())).unwrap_or_default()
    });
    // The data plane's pass: the shared objects in the installation's namespace.
    let ctx = context(&api, config(&sim), &tenant, None);
    let services = vec!["gcloudcx".to_owned(), "telegram".to_owned()];
    let err = super::data_plane::apply_data_plane(&ctx, &services)
        .await
        .expect_err("refused");
    let refusal = err.refusal().expect("a refusal");
    assert!(
        refusal.starts_with(&format!(
            "applying Deployment {HOME}/um-telegram: the apiserver answered 403 Forbidden"
        )),
        "{refusal}"
    );
    assert!(
        api.applied(&format!("/namespaces/{HOME}/deployments/"))
            .contains(&"um-gcloudcx".to_owned())
    );
    // A Tenant's reconcile reports it.
    let api = fake_api(&tenant, all_secrets());
    let ctx = context(&api, config(&sim), &tenant, Some(refusal.clone()));
    tenant::reconcile(Arc::new(tenant), ctx)
        .await
        .expect("reconciled");
    let status = api.status_written();
    assert_eq!(condition(&status, "Reconciled"), "False/ApplyFailed");
    assert_eq!(reconciled_message(&status), refusal);
}

fn deleting(tenant: Tenant, id: &str, since: k8s_openapi::jiff::Timestamp) -> Tenant {
    let mut deleting = tenant;
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since));
    deleting.status = Some(um_crds::TenantStatus {
        integration_id: Some(id.to_owned()),
        ..Default::default()
    });
    deleting
}

#[tokio::test]
async fn the_skip_annotation_lets_a_tenant_go_without_a_genesys_call() {
    let sim = genesys(CLIENT_SECRET).await;
    let mut tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    tenant.metadata.annotations = Some(BTreeMap::from([(
        tenant::SKIP_REMOTE_CLEANUP.to_owned(),
        "true".to_owned(),
    )]));
    let tenant = deleting(tenant, "int-gone", k8s_openapi::jiff::Timestamp::now());
    let api = fake_api(&tenant, all_secrets());
    reconcile(&api, &sim, tenant).await.expect("cleaned up");
    assert_eq!(
        sim.count_requests("POST", "/oauth/token"),
        0,
        "no Genesys call"
    );
    assert!(sim.deleted_integration_ids().is_empty());
    let events = api.events();
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "IntegrationLeftBehind"
                && note.contains("int-gone")
                && note.contains(tenant::SKIP_REMOTE_CLEANUP)),
        "{events:?}"
    );
    assert!(api.finalizer_removed(), "{:?}", api.requests().last());
}

#[tokio::test]
async fn a_failing_remote_cleanup_holds_the_tenant_until_the_deadline_then_lets_go() {
    let sim = genesys(CLIENT_SECRET).await;
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    reconcile(&fake_api(&tenant, all_secrets()), &sim, tenant.clone())
        .await
        .expect("created");
    let id = sim.integrations()[0].id.clone();
    let now = k8s_openapi::jiff::Timestamp::now();

    // Genesys fails the delete: a recent deletion keeps its finalizer.
    sim.fail_next(um_simulators::genesys::FaultTarget::Integrations, 503, 10);
    let recent = deleting(tenant.clone(), &id, now);
    let api = fake_api(&recent, all_secrets());
    reconcile(&api, &sim, recent)
        .await
        .expect_err("a recent deletion is retried");
    assert!(!api.finalizer_removed());

    // Past the deadline the same failure lets it go, with a Warning.
    let overdue_since = now
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(
            tenant::CLEANUP_DEADLINE.as_secs() as i64 + 60,
        ))
        .expect("a time in the past");
    let overdue = deleting(tenant, &id, overdue_since);
    let api = fake_api(&overdue, all_secrets());
    reconcile(&api, &sim, overdue).await.expect("given up");
    assert!(api.finalizer_removed(), "{:?}", api.requests().last());
    let events = api.events();
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "CleanupAbandoned" && note.contains(&id)),
        "{events:?}"
    );
    assert_eq!(
        sim.integrations().len(),
        1,
        "the integration is left behind"
    );
}

#[tokio::test]
async fn a_tenant_outside_the_watched_namespaces_is_left_to_its_installation() {
    let sim = genesys(CLIENT_SECRET).await;
    let mut scoped = config(&sim);
    scoped.watch_namespaces = vec!["other-shop".into()];
    let tenant = with_finalizer(crate::model::tests::telegram_genesys("acme"));
    let api = fake_api(&tenant, all_secrets());
    let action = reconcile_with(&api, scoped, tenant)
        .await
        .expect("nothing to do");
    assert_eq!(action, Action::await_change());
    assert!(api.requests().is_empty(), "{:?}", api.requests());
    assert_eq!(sim.count_requests("POST", "/oauth/token"), 0);
}
