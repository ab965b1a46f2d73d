//! Simulators in-process and the two connectors as child processes.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use um_config::{GenesysConfig, MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_simulators::genesys::{CreateCompletion, GenesysOptions, GenesysSimulator};
use um_simulators::telegram::{Guest, TelegramOptions, TelegramSimulator};

const CLIENT_ID: &str = "flood-client";
const CLIENT_SECRET: &str = "flood-client-secret";
const WEBHOOK_TOKEN: &str = "flood-webhook-token-0123456789";
/// Shard queues per route (the connectors' default, given explicitly so the
/// run's queues can be removed afterwards).
pub const BUS_SHARDS: u16 = 4;

pub struct Connector {
    pub service: &'static str,
    child: Child,
    _config_dir: tempfile::TempDir,
}

impl Connector {
    /// Peak resident set (`VmHWM`) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Connector {
    /// User + system CPU time so far (from `/proc/<pid>/stat`).
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.id()?;
        cpu_time_of(&format!("/proc/{pid}/stat"))
    }
}

/// utime + stime of a `/proc/<pid>/stat` file, in clock ticks of 10 ms
/// (`CLK_TCK` is 100 on Linux).
pub fn cpu_time_of(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; fields start after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

pub struct FloodBridge {
    pub genesys: Arc<GenesysSimulator>,
    pub telegram: TelegramSimulator,
    pub bot_token: String,
    /// `UM_BUS_NAMESPACE` of both connectors: this run's queues.
    pub bus_namespace: String,
    connectors: Vec<Connector>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

async fn start_connector(
    binary: &Path,
    service: &'static str,
    config: &ServiceConfig,
    port: u16,
    env: &[(&str, String)],
) -> anyhow::Result<Connector> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join(um_config::CONFIG_FILE_NAME),
        config.to_json(),
    )?;
    let child = Command::new(binary)
        .env("UM_SERVICE", service)
        .env("UM_CONFIG_DIR", dir.path())
        .env("UM_HTTP_PORT", port.to_string())
        .env("POD_IP", "127.0.0.1")
        .env("UM_LOG_LEVEL", "WARN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/healthz/readiness"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("{service} connector not ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Connector {
        service,
        child,
        _config_dir: dir,
    })
}

/// An Open Messaging integration named `name`, created with the OAuth
/// client `(id, secret)`, whose webhook is `webhook_url` signed with
/// `webhook_token`; returns its id.
pub async fn create_integration(
    base: &str,
    (client_id, client_secret): (&str, &str),
    name: &str,
    webhook_url: &str,
    webhook_token: &str,
) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .basic_auth(client_id, Some(client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let access_token = token["access_token"].as_str().context("no access_token")?;
    let integration: Value = client
        .post(format!(
            "{base}/api/v2/conversations/messaging/integrations/open"
        ))
        .bearer_auth(access_token)
        .json(
            &json!({"name": name, "outboundNotificationWebhookUrl": webhook_url,
                      "outboundNotificationWebhookSignatureSecretToken": webhook_token}),
        )
        .send()
        .await?
        .json()
        .await?;
    Ok(integration["id"]
        .as_str()
        .context("no integration id")?
        .to_owned())
}

impl FloodBridge {
    pub async fn start(binary: &Path, amqp: &str, redis: &str) -> anyhow::Result<Self> {
        let genesys = GenesysSimulator::start(GenesysOptions {
            rate_limit_per_minute: 0,
            create_completion: CreateCompletion::Immediate,
            ..GenesysOptions::default().with_client(CLIENT_ID, CLIENT_SECRET)
        })
        .await?;
        let bot_token = format!(
            "{}:flood{}",
            100_000 + (uuid::Uuid::new_v4().as_u128() % 800_000),
            unique()
        );
        let telegram =
            TelegramSimulator::start(TelegramOptions::default().with_bot(bot_token.clone()))
                .await?;
        let tenant_key = format!("flood.t{}", unique());
        let (telegram_port, gcloudcx_port) = (free_port()?, free_port()?);
        let integration_id = create_integration(
            &genesys.base_url(),
            (CLIENT_ID, CLIENT_SECRET),
            "flood",
            &format!("http://127.0.0.1:{gcloudcx_port}/openmessaging/{tenant_key}"),
            WEBHOOK_TOKEN,
        )
        .await?;
        let tenant = TenantConfig::new(
            tenant_key.clone(),
            "Flood",
            Platform::Telegram,
            format!("http://127.0.0.1:{telegram_port}/telegram/{tenant_key}"),
        );
        let mut telegram_config = ServiceConfig::new("telegram");
        telegram_config.tenants.insert(
            tenant_key.clone(),
            tenant
                .clone()
                .with_messaging(MessagingConfig::Telegram(um_config::TelegramConfig {
                    bot_token: Secret::new(bot_token.clone()),
                    webhook_secret_token: None,
                    api_base_url: Some(telegram.base_url()),
                })),
        );
        let mut gcloudcx_config = ServiceConfig::new("gcloudcx");
        gcloudcx_config.tenants.insert(
            tenant_key.clone(),
            tenant.with_genesys(GenesysConfig {
                region: "local".into(),
                api_base_url: genesys.base_url(),
                login_base_url: genesys.base_url(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                integration_id: Some(integration_id.clone()),
                webhook_token: Secret::new(WEBHOOK_TOKEN),
                custom_data: BTreeMap::new(),
                agent_name: None,
                commander: Default::default(),
            }),
        );
        let bus_namespace = format!("flood-{}", unique());
        let env = [
            ("UM_AMQP_URL", amqp.to_owned()),
            ("UM_REDIS_URL", redis.to_owned()),
            ("UM_BUS_NAMESPACE", bus_namespace.clone()),
            ("UM_BUS_SHARDS", BUS_SHARDS.to_string()),
        ];
        let (telegram_connector, gcloudcx_connector) = tokio::join!(
            start_connector(binary, "telegram", &telegram_config, telegram_port, &env),
            start_connector(binary, "gcloudcx", &gcloudcx_config, gcloudcx_port, &env),
        );
        let bridge = Self {
            genesys: Arc::new(genesys),
            telegram,
            bot_token,
            bus_namespace,
            connectors: vec![telegram_connector?, gcloudcx_connector?],
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while bridge.telegram.webhook_url(&bridge.bot_token).is_none() {
            if Instant::now() > deadline {
                bail!("the telegram connector did not call setWebhook");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(bridge)
    }

    pub fn genesys_handle(&self) -> Arc<GenesysSimulator> {
        self.genesys.clone()
    }

    pub fn guest(&self, id: i64) -> Guest {
        Guest::new(id, "Flood").with_username(format!("flood{id}"))
    }

    /// (service, peak RSS in KiB, CPU time) of each connector.
    pub fn resources(&self) -> Vec<(&'static str, Option<u64>, Option<Duration>)> {
        self.connectors
            .iter()
            .map(|connector| {
                (
                    connector.service,
                    connector.peak_rss_kib(),
                    connector.cpu_time(),
                )
            })
            .collect()
    }

    pub async fn stop(mut self) {
        for connector in &mut self.connectors {
            let _ = connector.child.kill().await;
        }
    }
}
