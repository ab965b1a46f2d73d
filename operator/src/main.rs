//! um-operator: configuration, CRD check, admin HTTP server, leader
//! election, the three controllers, graceful shutdown.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use kube::runtime::events::Reporter;
use kube::{Client, CustomResourceExt};
use tokio_util::sync::CancellationToken;
use um_crds::{NotifierDestination, Storage, Tenant};
use um_operator::config::OperatorConfig;
use um_operator::controllers::{self, Context};
use um_operator::http::{HttpState, listen_address, router};
use um_operator::leader::{ElectionConfig, LeaderElector};
use um_operator::metrics::Metrics;

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = init_logging() {
        eprintln!("um-operator: {error}");
        return ExitCode::from(2);
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = describe(&err), "um-operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: most of our errors already quote
/// their cause, anyhow's contexts do not.
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// The one log format of every process (um-telemetry): bunyan JSON lines,
/// `UM_LOG_LEVEL` in the reference system's syntax, `UM_LOG_FORMAT=pretty`
/// for people.
fn init_logging() -> Result<(), String> {
    let level = std::env::var("UM_LOG_LEVEL").unwrap_or_default();
    let format = std::env::var("UM_LOG_FORMAT")
        .unwrap_or_default()
        .parse::<um_telemetry::LogFormat>()?;
    um_telemetry::init("um-operator", &["um_operator"], &level, format).map_err(|e| e.to_string())
}

/// Refuses to start without the CRDs, saying how to install them.
async fn check_crds(client: &Client) -> anyhow::Result<()> {
    async fn check<K>(client: &Client) -> anyhow::Result<()>
    where
        K: kube::Resource<DynamicType = ()>
            + CustomResourceExt
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::all(client.clone());
        api.list_metadata(&ListParams::default().limit(1)).await.map_err(|err| {
            anyhow::anyhow!(
                "cannot list {crd} ({err}); is the CRD installed? Install it with `kubectl apply --server-side -k crds/` \
                 (or the Helm chart with crds.enabled=true) and make sure the operator's ClusterRole may list it",
                crd = K::crd_name()
            )
        })?;
        Ok(())
    }
    check::<Tenant>(client).await?;
    check::<Storage>(client).await?;
    check::<NotifierDestination>(client).await?;
    Ok(())
}

fn pod_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .map(|ns| ns.trim().to_owned())
        })
        .unwrap_or_else(|| "default".to_owned())
}

fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("um-operator-{}", std::process::id()))
}

fn on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = terminate => tracing::info!("SIGTERM: finishing in-flight reconciles"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing in-flight reconciles"),
        }
        shutdown.cancel();
    });
}

async fn run() -> anyhow::Result<()> {
    let config = Arc::new(OperatorConfig::load_from_env()?);
    let shutdown = CancellationToken::new();
    on_signal(shutdown.clone());

    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let addr = listen_address().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin HTTP server to {addr}"))?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    let server_shutdown = shutdown.clone();
    let app = router(HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "admin HTTP server failed");
        }
    });

    let client = kube_client(metrics.clone()).await?;
    check_crds(&client).await?;
    ready.store(true, Ordering::Relaxed);

    let identity = identity();
    let namespace = pod_namespace();
    let lease = config.lease_name();
    let elector = LeaderElector::new(
        Api::<Lease>::namespaced(client.clone(), &namespace),
        lease.clone(),
        identity.clone(),
        ElectionConfig::default(),
    );
    tracing::info!(lease, namespace, identity, "waiting for leadership");
    tokio::select! {
        _ = elector.acquire() => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    metrics.set_leader(true);
    tracing::info!(
        identity,
        "leading: starting the Tenant, Storage and NotifierDestination controllers"
    );

    let stop = shutdown.clone();
    let plane = controllers::data_plane::DataPlane::build(&namespace);
    let tenant_controller = controllers::tenant::build(
        client.clone(),
        &config,
        plane.requeued,
        stop.clone().cancelled_owned(),
    );
    let storage_controller =
        controllers::storage::build(client.clone(), &config, stop.clone().cancelled_owned());
    let notifier_controller =
        controllers::notifier::build(client.clone(), &config, stop.clone().cancelled_owned());
    let reporter = Reporter {
        controller: "um-operator".to_owned(),
        instance: Some(identity.clone()),
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let ctx = Arc::new(Context::new(
        client,
        config,
        reporter,
        metrics.clone(),
        http,
        controllers::Stores {
            tenants: tenant_controller.store(),
            storages: storage_controller.store(),
        },
        plane.plane,
    ));

    let controllers = futures::future::join4(
        controllers::tenant::run(ctx.clone(), tenant_controller),
        controllers::storage::run(ctx.clone(), storage_controller),
        controllers::notifier::run(ctx.clone(), notifier_controller),
        controllers::data_plane::run(ctx, plane.deployment_writer, stop.cancelled_owned()),
    );
    let lost = tokio::select! {
        _ = controllers => false,
        _ = elector.hold() => true,
    };
    metrics.set_leader(false);
    if lost {
        shutdown.cancel();
        anyhow::bail!(
            "lost the leader Lease {lease}; exiting so a fresh start re-joins the election"
        );
    }
    if let Err(err) = elector.release().await {
        tracing::warn!(error = %err, "releasing the leader Lease failed; the other replica takes over when it expires");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The Kubernetes client, counting every request it sends
/// (`um_operator_kube_api_requests_total`): what the operator costs the
/// apiserver, at rest and under load.
async fn kube_client(metrics: Arc<Metrics>) -> anyhow::Result<Client> {
    let config = kube::Config::infer()
        .await
        .context("connecting to the Kubernetes API (in-cluster service account or KUBECONFIG)")?;
    let counted =
        tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
            metrics.api_request(request.method(), request.uri().query());
            request
        });
    Ok(kube::client::ClientBuilder::try_from(config)
        .context("building the Kubernetes client")?
        .with_layer(&counted)
        .build())
}
