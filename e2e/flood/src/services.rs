//! RabbitMQ and Redis for the run, and the connector binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub struct Services {
    pub amqp: String,
    pub redis: String,
    /// Set when this run started them (and must stop them).
    run_dir: Option<(PathBuf, tempfile::TempDir)>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Services {
    pub fn from_env_or_start() -> anyhow::Result<Self> {
        if let (Ok(amqp), Ok(redis)) = (
            std::env::var("UM_TEST_AMQP_URL"),
            std::env::var("UM_TEST_REDIS_URL"),
        ) {
            return Ok(Self {
                amqp,
                redis,
                run_dir: None,
            });
        }
        Self::start()
    }

    /// Starts a RabbitMQ and Redis of this run's own (which it may
    /// restart).
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("um-flood-").tempdir()?;
        let script = repo_root().join("e2e/services.sh");
        eprintln!("starting RabbitMQ and Redis with {}", script.display());
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path())
            .env("UM_SERVICES_TTL", "1800")
            .output()
            .context("running e2e/services.sh")?;
        if !output.status.success() {
            bail!(
                "e2e/services.sh start failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let exports = String::from_utf8_lossy(&output.stdout);
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_owned())
        };
        let (Some(amqp), Some(redis)) = (value("UM_TEST_AMQP_URL"), value("UM_TEST_REDIS_URL"))
        else {
            bail!("e2e/services.sh printed no addresses: {exports}");
        };
        Ok(Self {
            amqp,
            redis,
            run_dir: Some((script, dir)),
        })
    }

    /// Runs `e2e/services.sh <command>` on this run's services
    /// (`restart-broker`, `restart-redis`).
    pub fn control(&self, command: &str) -> anyhow::Result<()> {
        let Some((script, dir)) = &self.run_dir else {
            bail!("{command}: RabbitMQ and Redis were not started by this run");
        };
        let status = Command::new("bash")
            .arg(script)
            .arg(command)
            .arg(dir.path())
            .status()
            .with_context(|| format!("running e2e/services.sh {command}"))?;
        if !status.success() {
            bail!("e2e/services.sh {command} failed");
        }
        Ok(())
    }

    pub fn stop(self) {
        if let Some((script, dir)) = self.run_dir {
            let _ = Command::new("bash")
                .arg(script)
                .arg("stop")
                .arg(dir.path())
                .status();
        }
    }
}

/// `cargo build --release -p um-connector`, then the binary next to ours
/// (same target directory, same profile).
pub fn build_connector() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "um-connector",
            "--bin",
            "um-connector",
        ])
        .current_dir(repo_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build of um-connector failed");
    }
    let own = std::env::current_exe()?;
    let binary = own
        .parent()
        .context("no directory of the current executable")?
        .join("um-connector");
    if !binary.exists() {
        bail!(
            "{} not found after the build; pass --connector-bin",
            binary.display()
        );
    }
    Ok(binary)
}
