//! What one fault scenario runs on: the Genesys and Telegram simulators,
//! two Tenants (each its own bot, OAuth client and integration), and the
//! `telegram` and `gcloudcx` connectors as child processes that can be
//! killed, restarted and reconfigured.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use um_config::{GenesysConfig, MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_simulators::genesys::{
    CreateCompletion, GenesysOptions, GenesysSimulator, WebhookRetryPolicy,
};
use um_simulators::telegram::{Guest, RedeliveryPolicy, TelegramOptions, TelegramSimulator};

use crate::bridge::{cpu_time_of, create_integration};

/// Shard queues per route, given explicitly so the run's queues can be
/// removed afterwards.
pub const BUS_SHARDS: u16 = 4;

/// One Tenant of the run.
#[derive(Debug, Clone)]
pub struct RigTenant {
    pub key: String,
    pub bot_token: String,
    pub client_id: String,
    client_secret: String,
    pub integration_id: String,
    webhook_token: String,
}

pub const SERVICES: [&str; 2] = ["telegram", "gcloudcx"];

struct Running {
    child: Child,
    /// Largest `VmHWM` of this service's processes so far, KiB.
    peak_rss_kib: u64,
    cpu: Duration,
}

pub struct Rig {
    pub genesys: Arc<GenesysSimulator>,
    pub telegram: Arc<TelegramSimulator>,
    pub tenants: Vec<RigTenant>,
    pub bus_namespace: String,
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
    ports: HashMap<&'static str, u16>,
    config_dirs: HashMap<&'static str, tempfile::TempDir>,
    running: HashMap<&'static str, Running>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

impl Rig {
    pub async fn start(
        binary: &Path,
        amqp: &str,
        redis: &str,
        tenants: usize,
    ) -> anyhow::Result<Self> {
        let genesys = GenesysSimulator::start(GenesysOptions {
            rate_limit_per_minute: 0,
            create_completion: CreateCompletion::Immediate,
            ..GenesysOptions::default()
        })
        .await?;
        // Platforms keep an event they could not hand over and try again
        // for a long time (Telegram for hours, Genesys' webhooks too): so
        // does the run, so "sent" and "accepted" differ only by what the
        // platform gave up on.
        genesys.set_webhook_retry(WebhookRetryPolicy {
            retries: 3_000,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        });
        let telegram = TelegramSimulator::start(TelegramOptions::default()).await?;
        telegram.set_redelivery(RedeliveryPolicy {
            max_attempts: 3_000,
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        });
        let ports = HashMap::from([("telegram", free_port()?), ("gcloudcx", free_port()?)]);
        let mut rig_tenants = Vec::new();
        for n in 0..tenants {
            let id = unique();
            let tenant = RigTenant {
                key: format!("faults{n}.t{id}"),
                bot_token: format!("{}:faults{id}", 100_000 + n),
                client_id: format!("client-{n}-{id}"),
                client_secret: format!("secret-{id}"),
                integration_id: String::new(),
                webhook_token: format!("webhook-token-{id}-0123456789"),
            };
            telegram.add_bot(&tenant.bot_token);
            genesys.add_oauth_client(&tenant.client_id, &tenant.client_secret);
            let webhook = format!(
                "http://127.0.0.1:{}/openmessaging/{}",
                ports["gcloudcx"], tenant.key
            );
            let integration_id = create_integration(
                &genesys.base_url(),
                (&tenant.client_id, &tenant.client_secret),
                &tenant.key,
                &webhook,
                &tenant.webhook_token,
            )
            .await?;
            rig_tenants.push(RigTenant {
                integration_id,
                ..tenant
            });
        }
        let bus_namespace = format!("faults-{}", unique());
        let mut rig = Self {
            genesys: Arc::new(genesys),
            telegram: Arc::new(telegram),
            tenants: rig_tenants,
            env: vec![
                ("UM_AMQP_URL", amqp.to_owned()),
                ("UM_REDIS_URL", redis.to_owned()),
                ("UM_BUS_NAMESPACE", bus_namespace.clone()),
                ("UM_BUS_SHARDS", BUS_SHARDS.to_string()),
                ("UM_CONFIG_RELOAD_SECONDS", "1".to_owned()),
            ],
            bus_namespace,
            binary: binary.to_owned(),
            ports,
            config_dirs: HashMap::new(),
            running: HashMap::new(),
        };
        for service in SERVICES {
            rig.config_dirs.insert(service, tempfile::tempdir()?);
            rig.write_config(service, &vec![true; tenants])?;
        }
        let mut started = Vec::new();
        for service in SERVICES {
            started.push(rig.spawn(service)?);
        }
        for (service, child) in SERVICES.into_iter().zip(started) {
            rig.running.insert(
                service,
                Running {
                    child,
                    peak_rss_kib: 0,
                    cpu: Duration::ZERO,
                },
            );
            rig.wait_ready(service).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for tenant in &rig.tenants {
            while rig.telegram.webhook_url(&tenant.bot_token).is_none() {
                if Instant::now() > deadline {
                    bail!(
                        "the telegram connector did not call setWebhook for {}",
                        tenant.key
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(rig)
    }

    fn tenant_config(&self, tenant: &RigTenant, service: &str) -> TenantConfig {
        let base = TenantConfig::new(
            tenant.key.clone(),
            "Faults",
            Platform::Telegram,
            format!(
                "http://127.0.0.1:{}/telegram/{}",
                self.ports["telegram"], tenant.key
            ),
        );
        match service {
            "telegram" => {
                base.with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
                    bot_token: Secret::new(tenant.bot_token.clone()),
                    webhook_secret_token: None,
                    api_base_url: Some(self.telegram.base_url()),
                }))
            }
            _ => base.with_genesys(GenesysConfig {
                region: "local".into(),
                api_base_url: self.genesys.base_url(),
                login_base_url: self.genesys.base_url(),
                client_id: tenant.client_id.clone(),
                client_secret: Secret::new(tenant.client_secret.clone()),
                integration_id: Some(tenant.integration_id.clone()),
                webhook_token: Secret::new(tenant.webhook_token.clone()),
                custom_data: BTreeMap::new(),
                agent_name: None,
                commander: Default::default(),
            }),
        }
    }

    /// Writes `service`'s configuration with the Tenants marked `true`
    /// (atomically: the connector re-reads the file every second).
    pub fn write_config(&self, service: &'static str, present: &[bool]) -> anyhow::Result<()> {
        let mut config = ServiceConfig::new(service);
        for (tenant, _) in self.tenants.iter().zip(present).filter(|(_, p)| **p) {
            config
                .tenants
                .insert(tenant.key.clone(), self.tenant_config(tenant, service));
        }
        let dir = self.config_dirs[service].path();
        let staged = dir.join(".service.json.new");
        std::fs::write(&staged, config.to_json())?;
        std::fs::rename(&staged, dir.join(um_config::CONFIG_FILE_NAME))?;
        Ok(())
    }

    fn spawn(&self, service: &'static str) -> anyhow::Result<Child> {
        Command::new(&self.binary)
            .env("UM_SERVICE", service)
            .env("UM_CONFIG_DIR", self.config_dirs[service].path())
            .env("UM_HTTP_PORT", self.ports[service].to_string())
            .env("POD_IP", "127.0.0.1")
            .env(
                "UM_LOG_LEVEL",
                std::env::var("UM_FAULTS_LOG_LEVEL").unwrap_or_else(|_| "ERROR".to_owned()),
            )
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            // UM_FAULTS_LOG_LEVEL=INFO shows the connectors' log lines.
            .stdout(if std::env::var_os("UM_FAULTS_LOG_LEVEL").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))
    }

    async fn wait_ready(&self, service: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{}/healthz/readiness", self.ports[service]);
        loop {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{service} connector not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Notes the running process's peak RSS and CPU time.
    fn sample(&mut self, service: &str) {
        if let Some(running) = self.running.get_mut(service)
            && let Some(pid) = running.child.id()
        {
            if let Some(rss) = peak_rss_kib(pid) {
                running.peak_rss_kib = running.peak_rss_kib.max(rss);
            }
            if let Some(cpu) = cpu_time_of(&format!("/proc/{pid}/stat")) {
                running.cpu = cpu;
            }
        }
    }

    /// SIGKILL, then a new process of the same service on the same port.
    pub async fn kill_and_restart(&mut self, service: &'static str) -> anyhow::Result<()> {
        self.sample(service);
        let running = self.running.get_mut(service).context("not running")?;
        running.child.start_kill()?;
        let _ = running.child.wait().await;
        let child = self.spawn(service)?;
        let running = self.running.get_mut(service).context("not running")?;
        running.child = child;
        self.wait_ready(service).await
    }

    /// (service, peak RSS KiB over all its processes, CPU of the last one).
    pub fn resources(&mut self) -> Vec<(&'static str, u64, Duration)> {
        for service in SERVICES {
            self.sample(service);
        }
        SERVICES
            .iter()
            .filter_map(|s| self.running.get(s).map(|r| (*s, r.peak_rss_kib, r.cpu)))
            .collect()
    }

    /// The OAuth client secret of Tenant `n` (to give a revoked client back).
    pub fn tenant_secret(&self, n: usize) -> String {
        self.tenants[n].client_secret.clone()
    }

    pub fn guest(&self, id: i64) -> Guest {
        Guest::new(id, "Faults").with_username(format!("faults{id}"))
    }

    pub async fn stop(mut self) {
        for running in self.running.values_mut() {
            let _ = running.child.kill().await;
        }
    }
}
