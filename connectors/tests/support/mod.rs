//! Shared harness of the flow tests: real RabbitMQ and Redis (from
//! `UM_TEST_AMQP_URL` / `UM_TEST_REDIS_URL`, set by `e2e/services.sh`), the
//! Genesys and Telegram simulators in-process, and the `um-connector`
//! binary as child processes (`telegram` and `gcloudcx`) with a temporary
//! configuration directory each.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use um_config::{GenesysConfig, MessagingConfig, Platform, Secret, ServiceConfig, TenantConfig};
use um_simulators::genesys::{CreateCompletion, GenesysOptions, GenesysSimulator};
use um_simulators::telegram::{Guest, TelegramOptions, TelegramSimulator};

pub const CLIENT_ID: &str = "flow-client";
pub const CLIENT_SECRET: &str = "flow-client-secret";
pub const WEBHOOK_TOKEN: &str = "genesys-webhook-token-0123456789";

/// Broker and Redis addresses. A flow test without them fails (it must not
/// pass silently): run it through `e2e/run-tests`, or start both with
/// `source <(bash e2e/services.sh start DIR)`.
pub fn services() -> Option<(String, String)> {
    match (
        std::env::var("UM_TEST_AMQP_URL"),
        std::env::var("UM_TEST_REDIS_URL"),
    ) {
        (Ok(amqp), Ok(redis)) if !amqp.is_empty() && !redis.is_empty() => Some((amqp, redis)),
        _ => panic!(
            "UM_TEST_AMQP_URL and UM_TEST_REDIS_URL are not set: run the flow tests through \
             e2e/run-tests, or start RabbitMQ and Redis with `source <(bash e2e/services.sh start DIR)`"
        ),
    }
}

/// The gcloudcx side of a flow-test tenant: the Genesys simulator with the
/// test OAuth client and webhook token.
pub fn simulator_genesys_config(genesys_base: &str, integration_id: &str) -> GenesysConfig {
    GenesysConfig {
        region: "local".into(),
        api_base_url: genesys_base.to_owned(),
        login_base_url: genesys_base.to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        integration_id: Some(integration_id.to_owned()),
        webhook_token: Secret::new(WEBHOOK_TOKEN),
        custom_data: BTreeMap::new(),
        agent_name: None,
        commander: Default::default(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Polls `check` until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One `um-connector` child process.
pub struct Connector {
    pub service: String,
    pub port: u16,
    pub child: Child,
    env: Vec<(String, String)>,
    _config_dir: tempfile::TempDir,
    config_path: PathBuf,
}

impl Connector {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn spawn_child(env: &[(String, String)]) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_um-connector"));
        command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var("UM_TEST_CONNECTOR_LOGS").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        command.spawn().expect("um-connector starts")
    }

    pub async fn start(
        service: &str,
        config: &ServiceConfig,
        port: u16,
        amqp: &str,
        redis: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let config_dir = tempfile::tempdir().expect("temp dir");
        let config_path = config_dir.path().join(um_config::CONFIG_FILE_NAME);
        std::fs::write(&config_path, config.to_json()).expect("config written");
        let mut env: Vec<(String, String)> = vec![
            ("UM_SERVICE".into(), service.into()),
            (
                "UM_CONFIG_DIR".into(),
                config_dir.path().display().to_string(),
            ),
            ("UM_AMQP_URL".into(), amqp.into()),
            ("UM_REDIS_URL".into(), redis.into()),
            ("POD_IP".into(), "127.0.0.1".into()),
            ("UM_HTTP_PORT".into(), port.to_string()),
            ("UM_LOG_FORMAT".into(), "pretty".into()),
            ("UM_LOG_LEVEL".into(), "WARN".into()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let child = Self::spawn_child(&env);
        let connector = Self {
            service: service.into(),
            port,
            child,
            env,
            _config_dir: config_dir,
            config_path,
        };
        connector.wait_ready().await;
        connector
    }

    /// Waits for `/healthz/readiness` (broker and Redis reachable).
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz/readiness", self.base_url());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} connector not ready on port {} within 30 s",
                self.service,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, in-flight work is lost mid-way.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the same service again with the same settings and file.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.child = Self::spawn_child(&self.env);
        self.wait_ready().await;
    }

    pub fn rewrite_config(&self, config: &ServiceConfig) {
        std::fs::write(&self.config_path, config.to_json()).expect("config rewritten");
    }
}

/// Everything of one flow: simulators, one tenant, both connectors.
pub struct Bridge {
    pub genesys: GenesysSimulator,
    pub telegram: TelegramSimulator,
    pub tenant_key: String,
    pub bot_token: String,
    pub integration_id: String,
    pub telegram_connector: Connector,
    pub gcloudcx_connector: Connector,
    pub amqp: String,
    pub redis: String,
    pub namespace: String,
}

#[derive(Default)]
pub struct BridgeOptions {
    pub prefix_agent_name: bool,
    pub extra_env: Vec<(&'static str, &'static str)>,
}

/// `prefix` plus 10 random hex digits: names that never collide between
/// runs sharing one broker and one Redis.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

impl Bridge {
    pub async fn start(amqp: &str, redis: &str, options: BridgeOptions) -> Self {
        let genesys = GenesysSimulator::start(GenesysOptions {
            rate_limit_per_minute: 0,
            create_completion: CreateCompletion::Immediate,
            ..GenesysOptions::default().with_client(CLIENT_ID, CLIENT_SECRET)
        })
        .await
        .expect("Genesys simulator");
        // Distinct per run: bus queues and Redis are shared between runs.
        let bot_token = format!("{}:{}", 100_000 + rand_u32() % 800_000, unique("AAF"));
        let telegram =
            TelegramSimulator::start(TelegramOptions::default().with_bot(bot_token.clone()))
                .await
                .expect("Telegram simulator");
        let tenant_key = format!("flow.{}", unique("t"));
        let telegram_port = free_port();
        let gcloudcx_port = free_port();
        let integration_id = create_integration(
            &genesys.base_url(),
            &format!("http://127.0.0.1:{gcloudcx_port}/openmessaging/{tenant_key}"),
        )
        .await;

        let mut base_tenant = TenantConfig::new(
            tenant_key.clone(),
            "Flow",
            Platform::Telegram,
            format!("http://127.0.0.1:{telegram_port}/telegram/{tenant_key}"),
        );
        base_tenant.options.prefix_agent_name = options.prefix_agent_name;
        let mut telegram_config = ServiceConfig::new("telegram");
        telegram_config.tenants.insert(
            tenant_key.clone(),
            base_tenant
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
            base_tenant.with_genesys(GenesysConfig {
                region: "local".into(),
                api_base_url: genesys.base_url(),
                login_base_url: genesys.base_url(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                integration_id: Some(integration_id.clone()),
                webhook_token: Secret::new(WEBHOOK_TOKEN),
                custom_data: BTreeMap::from([("brand".to_owned(), "ACME".to_owned())]),
                agent_name: None,
                commander: Default::default(),
            }),
        );
        // Own exchanges and queues: tests of one binary run concurrently
        // on the same broker, and a consumer must not take another test's
        // messages.
        let namespace = unique("umt-");
        let mut extra: Vec<(&str, &str)> = options.extra_env.clone();
        extra.push(("UM_BUS_NAMESPACE", namespace.as_str()));
        let (telegram_connector, gcloudcx_connector) = tokio::join!(
            Connector::start(
                "telegram",
                &telegram_config,
                telegram_port,
                amqp,
                redis,
                &extra
            ),
            Connector::start(
                "gcloudcx",
                &gcloudcx_config,
                gcloudcx_port,
                amqp,
                redis,
                &extra
            ),
        );
        let bridge = Self {
            genesys,
            telegram,
            tenant_key,
            bot_token,
            integration_id,
            telegram_connector,
            gcloudcx_connector,
            amqp: amqp.into(),
            redis: redis.into(),
            namespace: namespace.clone(),
        };
        // The Telegram connector registers its webhook when it sees the tenant.
        assert!(
            eventually(Duration::from_secs(15), || bridge
                .telegram
                .webhook_url(&bridge.bot_token)
                .is_some())
            .await,
            "setWebhook was not called"
        );
        bridge
    }

    pub fn guest(&self, id: i64) -> Guest {
        let guest = Guest::new(id, "Bob")
            .with_last_name("Minion")
            .with_username(format!("bob{id}"))
            .with_language("ja");
        self.telegram.add_chat(&guest);
        guest
    }

    /// Inbound messages of this bridge's integration.
    pub fn inbound_bodies(&self) -> Vec<Value> {
        self.genesys
            .inbound_messages()
            .into_iter()
            .filter(|record| record.integration_id == self.integration_id)
            .map(|record| record.body)
            .collect()
    }
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// Registers the Open Messaging integration as the operator would.
pub async fn create_integration(genesys_base: &str, webhook_url: &str) -> String {
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{genesys_base}/oauth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let access_token = token["access_token"].as_str().expect("access_token");
    let integration: Value = client
        .post(format!(
            "{genesys_base}/api/v2/conversations/messaging/integrations/open"
        ))
        .bearer_auth(access_token)
        .json(&json!({
            "name": "flow",
            "outboundNotificationWebhookUrl": webhook_url,
            "outboundNotificationWebhookSignatureSecretToken": WEBHOOK_TOKEN,
        }))
        .send()
        .await
        .expect("integration request")
        .json()
        .await
        .expect("integration JSON");
    integration["id"]
        .as_str()
        .expect("integration id")
        .to_owned()
}

/// One tenant of a platform connector and gcloudcx, both as processes,
/// between the platform's simulator and a Genesys simulator: the set-up the
/// LINE, Slack, Teams and Viber flow tests share. The platform's own
/// simulator and its `MessagingConfig` come from the test.
pub struct PlatformBridge {
    pub genesys: GenesysSimulator,
    pub tenant_key: String,
    pub webhook_url: String,
    pub integration_id: String,
    /// The platform connector's configuration, to rewrite in a test.
    pub platform_config: ServiceConfig,
    pub platform_connector: Connector,
    pub gcloudcx_connector: Connector,
    /// `UM_BUS_NAMESPACE` of both connectors: their queues and Redis keys.
    pub bus_namespace: String,
}

impl PlatformBridge {
    /// `env`: more environment for the platform connector process.
    pub async fn start(
        amqp: &str,
        redis: &str,
        platform: Platform,
        messaging: MessagingConfig,
        env: &[(&str, &str)],
    ) -> Self {
        let genesys = GenesysSimulator::start(GenesysOptions {
            rate_limit_per_minute: 0,
            create_completion: CreateCompletion::Immediate,
            ..GenesysOptions::default().with_client(CLIENT_ID, CLIENT_SECRET)
        })
        .await
        .expect("Genesys simulator");
        let service = platform.as_str();
        let tenant_key = format!("flow.{}", unique(&service[..1]));
        let platform_port = free_port();
        let gcloudcx_port = free_port();
        let integration_id = create_integration(
            &genesys.base_url(),
            &format!("http://127.0.0.1:{gcloudcx_port}/openmessaging/{tenant_key}"),
        )
        .await;
        let webhook_url = format!("http://127.0.0.1:{platform_port}/{service}/{tenant_key}");
        let base_tenant =
            TenantConfig::new(tenant_key.clone(), "Flow", platform, webhook_url.clone());
        let mut platform_config = ServiceConfig::new(service);
        platform_config.tenants.insert(
            tenant_key.clone(),
            base_tenant.clone().with_messaging(messaging),
        );
        let mut gcloudcx_config = ServiceConfig::new("gcloudcx");
        gcloudcx_config.tenants.insert(
            tenant_key.clone(),
            base_tenant.with_genesys(simulator_genesys_config(
                &genesys.base_url(),
                &integration_id,
            )),
        );
        let namespace = unique("umt-");
        let extra = [("UM_BUS_NAMESPACE", namespace.as_str())];
        let platform_env: Vec<(&str, &str)> = extra.iter().chain(env).copied().collect();
        let (platform_connector, gcloudcx_connector) = tokio::join!(
            Connector::start(
                service,
                &platform_config,
                platform_port,
                amqp,
                redis,
                &platform_env
            ),
            Connector::start(
                "gcloudcx",
                &gcloudcx_config,
                gcloudcx_port,
                amqp,
                redis,
                &extra
            ),
        );
        Self {
            genesys,
            tenant_key,
            webhook_url,
            integration_id,
            platform_config,
            platform_connector,
            gcloudcx_connector,
            bus_namespace: namespace,
        }
    }
}
