//! One Pod bound to this node: its volumes, its container processes, its
//! probes and its status, from start to the confirmed deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::env::{PodFacts, command_line, resolve_env};
use crate::events;
use crate::lookup::StoreLookup;
use crate::probe::{self, ProbeTracker};
use crate::runner::Shared;
use crate::sandbox::{self, BindMount, ProcessSpec};
use crate::status::{
    ContainerRuntime, PodFactsForStatus, RunState, Termination, pod_status_with_init,
};
use crate::volumes::{IssuedToken, VolumeContent, token_requests, volume_content, write_atomic};

/// What the runner tells a Pod worker.
#[derive(Debug)]
pub enum PodEvent {
    /// A newer version of the Pod object (maybe with a deletionTimestamp).
    Updated(Arc<Pod>),
    /// A Secret or ConfigMap changed: re-project the volumes.
    ObjectsChanged,
    /// The Pod object is gone from the API: stop the processes.
    Gone,
}

const TICK: Duration = Duration::from_millis(250);
/// How long a container must run before its restart back-off resets.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

struct Slot {
    spec: Container,
    binary: PathBuf,
    child: Option<Child>,
    pid: Option<u32>,
    started: Option<(Instant, Timestamp)>,
    kill_at: Option<Instant>,
    runtime: ContainerRuntime,
    next_start: Instant,
    backoff: Duration,
    readiness: Option<ProbeTracker>,
    liveness: Option<ProbeTracker>,
    startup: Option<ProbeTracker>,
    next_probe: Instant,
}

impl Slot {
    fn running(&self) -> bool {
        self.child.is_some()
    }
}

struct Token {
    value: String,
    refresh_at: Instant,
}

pub struct PodWorker {
    shared: Arc<Shared>,
    pod: Arc<Pod>,
    namespace: String,
    name: String,
    uid: String,
    dir: PathBuf,
    ip: String,
    /// Init containers first (`n_init` of them), then the containers.
    slots: Vec<Slot>,
    n_init: usize,
    tokens: BTreeMap<(Option<String>, i64), Token>,
    volumes_ok: Result<(), String>,
    volumes_dirty: bool,
    published: Option<PodStatus>,
    start_time: Timestamp,
    warned_probe: bool,
    /// Events to record: (type, reason, message).
    events: Vec<(&'static str, &'static str, String)>,
}

/// The directory of a Pod under the run directory.
pub fn pod_dir(run_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    run_dir.join("pods").join(format!("{namespace}_{name}"))
}

impl PodWorker {
    pub fn new(shared: Arc<Shared>, pod: Arc<Pod>, ip: String) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = pod_dir(&shared.config.run_dir, &namespace, &name);
        let now = Instant::now();
        let init: Vec<Container> = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .cloned()
            .collect();
        let n_init = init.len();
        let slots = init
            .iter()
            .chain(pod.spec.iter().flat_map(|s| s.containers.iter()))
            .enumerate()
            .map(|(i, c)| {
                let image = c.image.clone().unwrap_or_default();
                Slot {
                    binary: shared
                        .config
                        .images
                        .binary_for(&image)
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                    child: None,
                    pid: None,
                    started: None,
                    kill_at: None,
                    runtime: ContainerRuntime {
                        name: c.name.clone(),
                        image,
                        state: RunState::Waiting {
                            reason: if i >= n_init && n_init > 0 {
                                "PodInitializing".into()
                            } else {
                                "ContainerCreating".into()
                            },
                            message: None,
                        },
                        last_termination: None,
                        restart_count: 0,
                        ready: false,
                        started: false,
                    },
                    next_start: now,
                    backoff: shared.config.backoff_initial,
                    readiness: c
                        .readiness_probe
                        .as_ref()
                        .map(|p| ProbeTracker::new(p, false)),
                    liveness: c
                        .liveness_probe
                        .as_ref()
                        .map(|p| ProbeTracker::new(p, true)),
                    startup: c
                        .startup_probe
                        .as_ref()
                        .map(|p| ProbeTracker::new(p, false)),
                    next_probe: now,
                    spec: c.clone(),
                }
            })
            .collect();
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .unwrap_or_else(Timestamp::now);
        PodWorker {
            shared,
            pod,
            namespace,
            name,
            uid,
            dir,
            ip,
            slots,
            n_init,
            tokens: BTreeMap::new(),
            volumes_ok: Ok(()),
            volumes_dirty: true,
            published: None,
            start_time,
            warned_probe: false,
            events: Vec::new(),
        }
    }

    /// Records the queued Events (in the background).
    fn flush_events(&mut self) {
        for (kind, reason, message) in std::mem::take(&mut self.events) {
            crate::events::record(
                &self.shared.client,
                &self.pod,
                kind,
                reason,
                message,
                &self.shared.config.node_name,
            );
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    /// Runs until the Pod is deleted (then confirms the deletion) or the
    /// runner stops (then only stops the processes).
    pub async fn run(mut self, mut events: mpsc::Receiver<PodEvent>, stop: CancellationToken) {
        info!(pod = %self.key(), ip = %self.ip, "starting pod");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate(true).await;
                return;
            }
            tokio::select! {
                _ = stop.cancelled() => {
                    self.stop_all(Duration::from_secs(5)).await;
                    return;
                }
                event = events.recv() => match event {
                    Some(PodEvent::Updated(pod)) => self.pod = pod,
                    Some(PodEvent::ObjectsChanged) => self.volumes_dirty = true,
                    Some(PodEvent::Gone) | None => {
                        self.terminate(false).await;
                        return;
                    }
                },
                _ = tick.tick() => self.step().await,
            }
        }
    }

    /// The restart policy of slot `i`: init containers are never restarted
    /// after success (OnFailure unless the Pod says Never).
    fn policy_of(&self, i: usize) -> &str {
        match (i < self.n_init, self.restart_policy()) {
            (true, "Never") => "Never",
            (true, _) => "OnFailure",
            (false, p) => p,
        }
    }

    fn succeeded(&self, i: usize) -> bool {
        matches!(&self.slots[i].runtime.state, RunState::Terminated(t) if t.exit_code == 0)
    }

    /// One round: volumes, exits, starts, kills, probes, status.
    async fn step(&mut self) {
        self.refresh_tokens().await;
        if self.volumes_dirty {
            self.sync_volumes();
        }
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let policy = self.policy_of(i).to_owned();
            self.reap(i, &policy);
        }
        // Init containers run one after the other, to success, before the
        // containers start.
        let pending_init = (0..self.n_init).find(|&i| !self.succeeded(i));
        for i in 0..self.slots.len() {
            let policy = self.policy_of(i).to_owned();
            let slot = &mut self.slots[i];
            if let (Some(kill_at), Some(pid)) = (slot.kill_at, slot.pid)
                && now >= kill_at
                && slot.running()
            {
                sandbox::signal_group(pid, libc::SIGKILL);
            }
            let turn = match pending_init {
                Some(init) => i == init,
                None => i >= self.n_init,
            };
            let may_start = turn
                && match &slot.runtime.state {
                    RunState::Waiting { .. } => true,
                    RunState::Terminated(t) => match policy.as_str() {
                        "Never" => false,
                        "OnFailure" => t.exit_code != 0,
                        _ => true,
                    },
                    RunState::Running { .. } => false,
                };
            if !slot.running() && may_start && now >= slot.next_start {
                self.start(i);
            }
        }
        self.probe_all().await;
        self.publish().await;
        self.flush_events();
    }

    async fn refresh_tokens(&mut self) {
        let Some(spec) = self.pod.spec.as_ref() else {
            return;
        };
        let wanted = token_requests(spec.volumes.as_deref().unwrap_or(&[]));
        let sa = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Instant::now();
        for (audience, expiration) in wanted {
            let due = self
                .tokens
                .get(&(audience.clone(), expiration))
                .is_none_or(|t| now >= t.refresh_at);
            if !due {
                continue;
            }
            let request = TokenRequest {
                spec: TokenRequestSpec {
                    audiences: audience.clone().into_iter().collect(),
                    expiration_seconds: Some(expiration),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: Some(self.name.clone()),
                        uid: Some(self.uid.clone()),
                    }),
                },
                ..Default::default()
            };
            let api: Api<ServiceAccount> =
                Api::namespaced(self.shared.client.clone(), &self.namespace);
            match api
                .create_subresource::<_, TokenRequest>(
                    "token",
                    &sa,
                    &PostParams::default(),
                    &request,
                )
                .await
            {
                Ok(issued) => {
                    let Some(status) = issued.status else {
                        warn!(pod = %self.key(), "TokenRequest answered without a token");
                        continue;
                    };
                    // Refresh at 80% of the lifetime, as the kubelet does.
                    let life = Duration::from_secs((expiration.max(60) as u64) * 8 / 10);
                    self.tokens.insert(
                        (audience, expiration),
                        Token {
                            value: status.token,
                            refresh_at: now + life,
                        },
                    );
                    self.volumes_dirty = true;
                }
                Err(e) => {
                    warn!(pod = %self.key(), service_account = %sa, error = %e, "TokenRequest failed");
                    // Retry in a while, not on every tick.
                    self.tokens.insert(
                        (audience, expiration),
                        Token {
                            value: String::new(),
                            refresh_at: now + Duration::from_secs(2),
                        },
                    );
                }
            }
        }
    }

    fn facts(&self) -> PodFacts {
        PodFacts::of(
            &self.pod,
            &self.shared.config.node_name,
            &self.ip,
            &self.shared.config.host_ip,
        )
    }

    /// Projects every volume into `<pod dir>/volumes/<name>`.
    fn sync_volumes(&mut self) {
        self.volumes_dirty = false;
        let facts = self.facts();
        let lookup = StoreLookup {
            namespace: &self.namespace,
            secrets: &self.shared.secrets,
            config_maps: &self.shared.config_maps,
        };
        let volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut result = Ok(());
        for volume in &volumes {
            let dir = self.dir.join("volumes").join(&volume.name);
            let token = volume
                .projected
                .as_ref()
                .and_then(|p| p.sources.as_ref())
                .and_then(|s| s.iter().find_map(|s| s.service_account_token.as_ref()))
                .and_then(|t| {
                    self.tokens
                        .get(&(t.audience.clone(), t.expiration_seconds.unwrap_or(3600)))
                })
                .filter(|t| !t.value.is_empty())
                .map(|t| IssuedToken { token: &t.value });
            let outcome = volume_content(volume, &facts, &lookup, token.as_ref())
                .map_err(|e| e.to_string())
                .and_then(|content| match content {
                    VolumeContent::EmptyDir => std::fs::create_dir_all(&dir)
                        .map(|_| false)
                        .map_err(|e| format!("volume {}: {e}", volume.name)),
                    VolumeContent::Files(files) => write_atomic(&dir, &files)
                        .map_err(|e| format!("volume {}: {e}", volume.name)),
                });
            match outcome {
                Ok(true) => info!(pod = %self.key(), volume = %volume.name, "volume updated"),
                Ok(false) => {}
                Err(e) => {
                    // Logged once per distinct problem; retried every tick.
                    if self.volumes_ok.as_ref().err() != Some(&e) {
                        warn!(pod = %self.key(), error = %e, "volume not ready");
                        self.events
                            .push((events::WARNING, "FailedMount", e.clone()));
                    }
                    result = Err(e);
                }
            }
        }
        if result.is_err() {
            // Retry without waiting for an event (the token may be pending).
            self.volumes_dirty = true;
        }
        self.volumes_ok = result;
    }

    fn base_env(&self) -> BTreeMap<String, String> {
        let cfg = &self.shared.config;
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), cfg.path_env.clone());
        env.insert("HOME".into(), self.dir.join("home").display().to_string());
        env.insert("HOSTNAME".into(), self.name.clone());
        let (host, port) = (&cfg.apiserver_host, cfg.apiserver_port);
        env.insert("KUBERNETES_SERVICE_HOST".into(), host.clone());
        env.insert("KUBERNETES_SERVICE_PORT".into(), port.to_string());
        env.insert("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string());
        env.insert("KUBERNETES_PORT".into(), format!("tcp://{host}:{port}"));
        for (k, v) in &cfg.pass_env {
            env.insert(k.clone(), v.clone());
        }
        env
    }

    fn mounts(&self, container: &Container) -> Vec<BindMount> {
        let volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        container
            .volume_mounts
            .iter()
            .flatten()
            .filter_map(|m| {
                let volume = volumes.iter().find(|v| v.name == m.name)?;
                let mut source = self.dir.join("volumes").join(&m.name);
                if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    source = source.join(sub);
                }
                Some(BindMount {
                    source,
                    target: PathBuf::from(&m.mount_path),
                    // Secret, ConfigMap and projected volumes are read-only.
                    read_only: m.read_only.unwrap_or(false) || volume.empty_dir.is_none(),
                })
            })
            .collect()
    }

    fn wait(&mut self, i: usize, reason: &str, message: String) {
        let slot = &mut self.slots[i];
        let changed = !matches!(&slot.runtime.state,
            RunState::Waiting { reason: r, message: Some(m) } if r == reason && *m == message);
        if changed && reason != "ContainerCreating" {
            self.events.push((
                events::WARNING,
                "Failed",
                format!("Error: {message} (container {})", slot.runtime.name),
            ));
        }
        slot.runtime.state = RunState::Waiting {
            reason: reason.into(),
            message: Some(message),
        };
        slot.next_start = Instant::now() + Duration::from_secs(2);
    }

    fn start(&mut self, i: usize) {
        if let Err(e) = self.volumes_ok.clone() {
            self.wait(i, "ContainerCreating", e);
            return;
        }
        let facts = self.facts();
        let lookup = StoreLookup {
            namespace: &self.namespace,
            secrets: &self.shared.secrets,
            config_maps: &self.shared.config_maps,
        };
        let container = self.slots[i].spec.clone();
        let env = match resolve_env(&container, &facts, &lookup, &self.base_env()) {
            Ok(env) => env,
            Err(e) => {
                self.wait(i, "CreateContainerConfigError", e.to_string());
                return;
            }
        };
        let binary = self.slots[i].binary.clone();
        let mut argv = command_line(&container, &binary.display().to_string(), &env);
        if let Some(first) = argv.first_mut() {
            *first = crate::images::program_for(first, &self.slots[i].runtime.image, &binary);
        }
        let working_dir = container
            .working_dir
            .as_deref()
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| self.dir.clone());
        let _ = std::fs::create_dir_all(self.dir.join("home"));
        let spec = ProcessSpec {
            argv,
            env,
            working_dir,
            log_file: self.dir.join(format!("{}.log", container.name)),
            mounts: self.mounts(&container),
        };
        let was_terminated = matches!(self.slots[i].runtime.state, RunState::Terminated(_))
            || self.slots[i].runtime.last_termination.is_some()
            || self.slots[i].started.is_some();
        let mut created = Vec::new();
        let spawned = sandbox::spawn(&spec, &mut created);
        self.shared
            .created_mount_points
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(created);
        match spawned {
            Ok(child) => {
                let key = self.key();
                let slot = &mut self.slots[i];
                if was_terminated {
                    slot.runtime.restart_count += 1;
                }
                let now = Timestamp::now();
                slot.pid = child.id();
                slot.child = Some(child);
                slot.started = Some((Instant::now(), now));
                slot.kill_at = None;
                slot.runtime.state = RunState::Running { started_at: now };
                slot.runtime.ready = false;
                slot.runtime.started = slot.startup.is_none();
                let c = &slot.spec;
                slot.readiness = c
                    .readiness_probe
                    .as_ref()
                    .map(|p| ProbeTracker::new(p, false));
                slot.liveness = c
                    .liveness_probe
                    .as_ref()
                    .map(|p| ProbeTracker::new(p, true));
                slot.startup = c
                    .startup_probe
                    .as_ref()
                    .map(|p| ProbeTracker::new(p, false));
                let delay = [&c.startup_probe, &c.readiness_probe, &c.liveness_probe]
                    .into_iter()
                    .flatten()
                    .map(probe::initial_delay)
                    .min()
                    .unwrap_or_default();
                slot.next_probe = Instant::now() + delay;
                info!(pod = %key, container = %container.name, pid = ?slot.pid,
                      restarts = slot.runtime.restart_count, "container started");
                self.events.push((
                    events::NORMAL,
                    "Started",
                    format!("Started container {}", container.name),
                ));
            }
            Err(e) => {
                warn!(pod = %self.key(), container = %container.name, error = %e, "container did not start");
                self.wait(i, "RunContainerError", e.to_string());
            }
        }
    }

    /// Collects an exited process and schedules its restart.
    fn reap(&mut self, i: usize, restart_policy: &str) {
        let key = self.key();
        let backoff_max = self.shared.config.backoff_max;
        let slot = &mut self.slots[i];
        let Some(child) = slot.child.as_mut() else {
            return;
        };
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                warn!(pod = %key, error = %e, "wait failed");
                return;
            }
        };
        use std::os::unix::process::ExitStatusExt;
        let (started_instant, started_at) =
            slot.started.unwrap_or((Instant::now(), Timestamp::now()));
        let termination = Termination {
            exit_code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            signal: status.signal(),
            started_at: Some(started_at),
            finished_at: Timestamp::now(),
        };
        info!(pod = %key, container = %slot.runtime.name, exit_code = termination.exit_code,
              "container exited");
        slot.child = None;
        slot.pid = None;
        slot.kill_at = None;
        slot.runtime.ready = false;
        slot.runtime.last_termination = Some(termination.clone());
        let restarts = match restart_policy {
            "Never" => false,
            "OnFailure" => termination.exit_code != 0,
            _ => true,
        };
        if started_instant.elapsed() >= BACKOFF_RESET_AFTER {
            slot.backoff = self.shared.config.backoff_initial;
        }
        if restarts {
            self.events.push((
                events::WARNING,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} (exit code {})",
                    slot.runtime.name, termination.exit_code
                ),
            ));
            slot.next_start = Instant::now() + slot.backoff;
            slot.runtime.state = RunState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={}",
                    slot.backoff.as_secs(),
                    slot.runtime.name
                )),
            };
            slot.backoff = (slot.backoff * 2).min(backoff_max);
        } else {
            slot.runtime.state = RunState::Terminated(termination);
        }
    }

    async fn probe_all(&mut self) {
        let now = Instant::now();
        let http = self.shared.http.clone();
        let ip = self.ip.clone();
        let mut jobs = Vec::new();
        for (i, slot) in self.slots.iter().enumerate().skip(self.n_init) {
            if !slot.running() || slot.kill_at.is_some() || now < slot.next_probe {
                continue;
            }
            let c = slot.spec.clone();
            let which = if !slot.runtime.started {
                ("startup", c.startup_probe.clone())
            } else {
                ("liveness+readiness", None)
            };
            let http = http.clone();
            let ip = ip.clone();
            jobs.push(async move {
                let run = |p: Option<k8s_openapi::api::core::v1::Probe>| {
                    let http = http.clone();
                    let ip = ip.clone();
                    let c = c.clone();
                    async move {
                        match p {
                            Some(p) => Some(probe::run_probe(&http, &p, &c, &ip).await),
                            None => None,
                        }
                    }
                };
                if which.0 == "startup" {
                    (i, run(which.1).await, None, None)
                } else {
                    let (live, ready) = tokio::join!(
                        run(c.liveness_probe.clone()),
                        run(c.readiness_probe.clone())
                    );
                    (i, None, live, ready)
                }
            });
        }
        let results = futures::future::join_all(jobs).await;
        let key = self.key();
        for (i, startup, live, ready) in results {
            let grace = self.grace_seconds();
            let slot = &mut self.slots[i];
            let periods = [
                &slot.spec.startup_probe,
                &slot.spec.readiness_probe,
                &slot.spec.liveness_probe,
            ]
            .into_iter()
            .flatten()
            .map(probe::period)
            .min()
            .unwrap_or(Duration::from_secs(10));
            slot.next_probe = Instant::now() + periods;
            if let (Some(ok), Some(t)) = (startup, slot.startup.as_mut()) {
                let was = t.healthy;
                if t.record(ok) && !was {
                    slot.runtime.started = true;
                } else if !ok && t.failures_exhausted() {
                    warn!(pod = %key, container = %slot.runtime.name, "startup probe failed: restarting");
                    self.events.push((
                        events::WARNING,
                        "Unhealthy",
                        format!(
                            "Startup probe failed: container {} will be restarted",
                            slot.runtime.name
                        ),
                    ));
                    Self::kill(slot, grace);
                }
            }
            if !slot.runtime.started {
                continue;
            }
            if let (Some(ok), Some(t)) = (live, slot.liveness.as_mut())
                && !t.record(ok)
            {
                warn!(pod = %key, container = %slot.runtime.name, "liveness probe failed: restarting");
                self.events.push((
                    events::WARNING,
                    "Unhealthy",
                    format!(
                        "Liveness probe failed: container {} will be restarted",
                        slot.runtime.name
                    ),
                ));
                Self::kill(slot, grace);
                continue;
            }

            let was_ready = slot.runtime.ready;
            slot.runtime.ready = match (ready, slot.readiness.as_mut()) {
                (Some(ok), Some(t)) => t.record(ok),
                _ => slot.readiness.as_ref().is_none_or(|t| t.healthy),
            };
            if was_ready && !slot.runtime.ready {
                self.events.push((
                    events::WARNING,
                    "Unhealthy",
                    format!(
                        "Readiness probe failed: container {} is not ready",
                        slot.runtime.name
                    ),
                ));
            }
        }
        if !self.warned_probe {
            for slot in &self.slots {
                for p in [
                    &slot.spec.readiness_probe,
                    &slot.spec.liveness_probe,
                    &slot.spec.startup_probe,
                ]
                .into_iter()
                .flatten()
                {
                    if !probe::supported(p) {
                        warn!(pod = %key, container = %slot.runtime.name,
                              "exec and gRPC probes are not supported: counted as success");
                        self.warned_probe = true;
                    }
                }
            }
        }
    }

    fn grace_seconds(&self) -> u64 {
        self.pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0) as u64
    }

    fn kill(slot: &mut Slot, grace: u64) {
        if let Some(pid) = slot.pid {
            sandbox::signal_group(pid, libc::SIGTERM);
            slot.kill_at = Some(Instant::now() + Duration::from_secs(grace));
            slot.runtime.ready = false;
        }
    }

    /// SIGTERM to every process, SIGKILL after `grace`, and wait for them.
    async fn stop_all(&mut self, grace: Duration) {
        for slot in &mut self.slots {
            if let Some(pid) = slot.pid {
                sandbox::signal_group(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for slot in &mut self.slots {
            let Some(child) = slot.child.as_mut() else {
                continue;
            };
            let exited = tokio::time::timeout_at(deadline, child.wait()).await;
            if exited.is_err() {
                if let Some(pid) = slot.pid {
                    warn!(pod = %format!("{}/{}", self.namespace, self.name),
                          container = %slot.runtime.name, "grace period over: SIGKILL");
                    sandbox::signal_group(pid, libc::SIGKILL);
                }
                let _ = child.wait().await;
            }
            // Anything left in the group (grandchildren) goes too.
            if let Some(pid) = slot.pid {
                sandbox::signal_group(pid, libc::SIGKILL);
            }
            slot.child = None;
            slot.pid = None;
        }
    }

    /// Stops the processes; when the Pod was deleted with a grace period,
    /// confirms the deletion (what the kubelet does once containers stopped).
    async fn terminate(&mut self, confirm: bool) {
        let grace = Duration::from_secs(self.grace_seconds());
        info!(pod = %self.key(), grace_seconds = grace.as_secs(), "stopping pod");
        for slot in &self.slots {
            if slot.running() {
                self.events.push((
                    events::NORMAL,
                    "Killing",
                    format!("Stopping container {}", slot.runtime.name),
                ));
            }
        }
        self.flush_events();
        self.stop_all(grace).await;
        if !confirm {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &dp).await {
            Ok(_) => info!(pod = %self.key(), "pod deletion confirmed"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => warn!(pod = %self.key(), error = %e, "could not confirm the pod deletion"),
        }
    }

    async fn publish(&mut self) {
        let runtimes: Vec<ContainerRuntime> =
            self.slots.iter().map(|s| s.runtime.clone()).collect();
        let mut pod = (*self.pod).clone();
        if let Some(published) = &self.published {
            pod.status = Some(published.clone());
        }
        let (init, containers) = runtimes.split_at(self.n_init);
        let status = pod_status_with_init(
            &pod,
            init,
            containers,
            &PodFactsForStatus {
                pod_ip: &self.ip,
                host_ip: &self.shared.config.host_ip,
                start_time: self.start_time,
                restart_always: self.restart_policy() == "Always",
                now: Timestamp::now(),
            },
        );
        if self.published.as_ref() == Some(&status) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => self.published = Some(status),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => warn!(pod = %self.key(), error = %e, "status update failed"),
        }
    }
}
