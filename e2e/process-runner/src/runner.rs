//! The kubelet stand-in: registers a Node, binds the Pods it can run, and
//! keeps one worker per bound Pod.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::images::ImageMap;
use crate::ipam::LoopbackIpam;
use crate::pod::{PodEvent, PodWorker};

const FIELD_MANAGER: &str = "um-process-runner";

/// Settings of the runner (from the command line).
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub node_name: String,
    pub run_dir: PathBuf,
    pub images: ImageMap,
    /// The API server as Pods reach it (KUBERNETES_SERVICE_HOST/PORT).
    pub apiserver_host: String,
    pub apiserver_port: u16,
    pub host_ip: String,
    /// PATH given to every container.
    pub path_env: String,
    /// Variables of the runner's environment handed to every container.
    pub pass_env: Vec<(String, String)>,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Where the loopback block locks live, and the first block to try.
    pub lock_dir: PathBuf,
    pub first_block: u8,
}

/// What every Pod worker shares.
pub struct Shared {
    pub client: Client,
    pub config: RunnerConfig,
    pub secrets: Store<Secret>,
    pub config_maps: Store<ConfigMap>,
    pub http: reqwest::Client,
    /// Mount points the runner created on the host; removed when it stops
    /// (not earlier: removing a directory unmounts it in every namespace,
    /// and replicas share their mount paths).
    pub created_mount_points: Mutex<Vec<PathBuf>>,
}

struct WorkerHandle {
    uid: String,
    events: mpsc::Sender<PodEvent>,
}

/// Runs until `stop` is cancelled; stops every container before returning.
pub async fn run(
    client: Client,
    config: RunnerConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    register_node(&client, &config).await?;

    let (secrets, secret_writer) = reflector::store();
    let (config_maps, cm_writer) = reflector::store();
    let (changed_tx, mut changed_rx) = mpsc::channel::<()>(16);

    let secret_stream = reflector::reflector(
        secret_writer,
        watcher::watcher(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let cm_stream = reflector::reflector(
        cm_writer,
        watcher::watcher(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    {
        let tx = changed_tx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut merged = std::pin::pin!(futures::stream::select(
                secret_stream.map(|r| r.map(|_| ())),
                cm_stream.map(|r| r.map(|_| ())),
            ));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    item = merged.next() => match item {
                        Some(Ok(())) => { let _ = tx.try_send(()); }
                        Some(Err(e)) => warn!(error = %e, "secret/configmap watch error"),
                        None => return,
                    }
                }
            }
        });
    }
    let _ = (
        secrets.wait_until_ready().await,
        config_maps.wait_until_ready().await,
    );

    let shared = Arc::new(Shared {
        client: client.clone(),
        config: config.clone(),
        secrets,
        config_maps,
        http: reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .build()?,
        created_mount_points: Mutex::new(Vec::new()),
    });

    let heartbeat = tokio::spawn(heartbeat_loop(client.clone(), config.clone(), stop.clone()));

    let block = crate::ipam::claim_block(&config.lock_dir, config.first_block)?;
    info!(pod_ips = %format!("127.{}.0.0/16", block.octet), "loopback block claimed");
    let ipam = Arc::new(Mutex::new(LoopbackIpam::new(block.octet)));
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, String, Ipv4Addr)>();
    let pods_api: Api<Pod> = Api::all(client.clone());
    let mut pod_events = watcher::watcher(pods_api, watcher::Config::default())
        .default_backoff()
        .boxed();

    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(()) = changed_rx.recv() => {
                for w in workers.values() {
                    let _ = w.events.try_send(PodEvent::ObjectsChanged);
                }
            }
            Some((key, uid, ip)) = done_rx.recv() => {
                if workers.get(&key).is_some_and(|w| w.uid == uid) {
                    workers.remove(&key);
                }
                lock(&ipam).release(ip);
            }
            event = pod_events.next() => match event {
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                    on_pod(&shared, &ipam, &mut workers, &done_tx, &stop, pod).await;
                }
                Some(Ok(Event::Delete(pod))) => {
                    let key = pod_key(&pod);
                    if let Some(w) = workers.get(&key)
                        && Some(&w.uid) == pod.metadata.uid.as_ref()
                    {
                        let _ = w.events.send(PodEvent::Gone).await;
                    }
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => warn!(error = %e, "pod watch error"),
                None => break,
            }
        }
    }
    info!("stopping: waiting for the pods' processes to stop");
    // Workers see `stop` too; wait until each has reported.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !workers.is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some((key, _, _))) => {
                workers.remove(&key);
            }
            _ => break,
        }
    }
    heartbeat.abort();
    let created = std::mem::take(
        &mut *shared
            .created_mount_points
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    crate::sandbox::remove_mount_points(&created);
    Ok(())
}

fn lock(ipam: &Mutex<LoopbackIpam>) -> std::sync::MutexGuard<'_, LoopbackIpam> {
    ipam.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

async fn on_pod(
    shared: &Arc<Shared>,
    ipam: &Arc<Mutex<LoopbackIpam>>,
    workers: &mut HashMap<String, WorkerHandle>,
    done_tx: &mpsc::UnboundedSender<(String, String, Ipv4Addr)>,
    stop: &CancellationToken,
    pod: Pod,
) {
    let key = pod_key(&pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(spec) = pod.spec.as_ref() else {
        return;
    };
    let node = spec.node_name.as_deref().unwrap_or("");
    if node.is_empty() {
        if pod.metadata.deletion_timestamp.is_none() && shared.config.images.runs_pod(spec) {
            bind(shared, &pod).await;
        }
        return;
    }
    if node != shared.config.node_name {
        return;
    }
    if let Some(w) = workers.get(&key)
        && w.uid == uid
    {
        let _ = w.events.send(PodEvent::Updated(Arc::new(pod))).await;
        return;
    }
    // Same name, new Pod: the old worker finishes on its own.
    if is_terminal(&pod) {
        return;
    }
    let known_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
    let ip = {
        let mut ipam = lock(ipam);
        match known_ip {
            Some(ip) if ipam.claim(ip) => Some(ip),
            _ => ipam.allocate(),
        }
    };
    let Some(ip) = ip else {
        warn!(pod = %key, "no loopback address left for the pod");
        return;
    };
    let (tx, rx) = mpsc::channel(32);
    workers.insert(
        key.clone(),
        WorkerHandle {
            uid: uid.clone(),
            events: tx,
        },
    );
    let worker = PodWorker::new(shared.clone(), Arc::new(pod), ip.to_string());
    let done = done_tx.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        worker.run(rx, stop).await;
        let _ = done.send((key, uid, ip));
    });
}

/// Binds the Pod to this node through its `binding` subresource.
async fn bind(shared: &Shared, pod: &Pod) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": { "name": name, "uid": pod.metadata.uid },
        "target": { "apiVersion": "v1", "kind": "Node", "name": shared.config.node_name },
    });
    match api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => {
            info!(pod = %format!("{ns}/{name}"), node = %shared.config.node_name, "bound");
            crate::events::record(
                &shared.client,
                pod,
                crate::events::NORMAL,
                "Scheduled",
                format!(
                    "Successfully assigned {ns}/{name} to {}",
                    shared.config.node_name
                ),
                &shared.config.node_name,
            );
        }
        // Already bound (a watch event raced our own binding).
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => warn!(pod = %format!("{ns}/{name}"), error = %e, "binding failed"),
    }
}

fn node_status(config: &RunnerConfig) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let capacity =
        json!({ "cpu": "16", "memory": "64Gi", "pods": "500", "ephemeral-storage": "100Gi" });
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({ "type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now })
    };
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [
            { "type": "InternalIP", "address": config.host_ip },
            { "type": "Hostname", "address": config.node_name },
        ],
        "conditions": [
            condition("Ready", "True", "KubeletReady", "um-process-runner is posting ready status"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
        ],
        "nodeInfo": {
            "architecture": std::env::consts::ARCH,
            "operatingSystem": "linux",
            "kubeletVersion": "um-process-runner",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "process://local",
            "osImage": "local processes",
            "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
        },
    })
}

/// Creates or updates the Node object (server-side apply, one field manager).
async fn register_node(client: &Client, config: &RunnerConfig) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": {
                "kubernetes.io/hostname": config.node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH },
                "node.kubernetes.io/instance-type": "um-process-runner",
            },
        },
    });
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    nodes
        .patch(&config.node_name, &pp, &Patch::Apply(&node))
        .await
        .map_err(|e| anyhow::anyhow!("registering node {}: {e}", config.node_name))?;
    post_node_status(client, config).await?;
    info!(node = %config.node_name, "node registered");
    Ok(())
}

async fn post_node_status(client: &Client, config: &RunnerConfig) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let status = json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": config.node_name },
                         "status": node_status(config) });
    nodes
        .patch_status(
            &config.node_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await
        .map_err(|e| anyhow::anyhow!("node {} status: {e}", config.node_name))?;
    Ok(())
}

/// Node status every 10 s and the node Lease, as the kubelet heartbeats.
async fn heartbeat_loop(client: Client, config: RunnerConfig, stop: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = post_node_status(&client, &config).await {
            warn!(error = %e, "node heartbeat failed");
        }
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(config.node_name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.node_name.clone()),
                lease_duration_seconds: Some(40),
                renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
                ..Default::default()
            }),
        };
        let mut value = serde_json::to_value(&lease).unwrap_or_default();
        value["apiVersion"] = json!("coordination.k8s.io/v1");
        value["kind"] = json!("Lease");
        if let Err(e) = leases
            .patch(
                &config.node_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&value),
            )
            .await
        {
            warn!(error = %e, "node lease renewal failed");
        }
    }
}
