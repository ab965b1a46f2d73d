//! um-process-runner: the e2e stand-in for a kubelet (`run`) and for an
//! ingress controller (`ingress`) on the local control plane.

mod env;
mod events;
mod images;
mod ingress;
mod ipam;
mod lookup;
mod pod;
mod probe;
mod runner;
mod sandbox;
mod status;
mod volumes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::info;

use images::{ImageMap, ImageMapping};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a Node, bind the Pods whose images map to local binaries and
    /// run their containers as local processes.
    Run(RunArgs),
    /// Reverse-proxy HTTP by the cluster's Ingress rules.
    Ingress(IngressArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Directory for Pod volumes and container logs (<run-dir>/pods/<ns>_<pod>/).
    #[arg(long)]
    run_dir: PathBuf,
    /// NAME=PATH: containers whose image's last path segment is NAME run PATH.
    #[arg(long = "image", value_name = "NAME=PATH")]
    images: Vec<ImageMapping>,
    #[arg(long, default_value = "um-local")]
    node_name: String,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// HOST:PORT of the API server as Pods see it (default: from the kubeconfig).
    #[arg(long)]
    apiserver: Option<String>,
    /// Names of variables of this process's environment to hand to every container.
    #[arg(long = "pass-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// First restart back-off of a container that exited, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    backoff_initial_ms: u64,
    /// Longest restart back-off, in seconds.
    #[arg(long, default_value_t = 30)]
    backoff_max_secs: u64,
    /// Pod IPs come from 127.N.0.0/16; N is the first block (1-254) not held
    /// by another runner, trying this one first (default: from the process id).
    #[arg(long)]
    pod_ip_block: Option<u8>,
}

#[derive(clap::Args)]
struct IngressArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// Serve only Ingresses of this class (and those without a class).
    #[arg(long)]
    ingress_class: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

/// Cancels on SIGTERM, SIGINT or when the TTL runs out.
fn stop_token(ttl: u64) -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = tokio::time::sleep(Duration::from_secs(ttl)) => info!(ttl, "TTL reached: stopping"),
        }
        token.cancel();
    });
    stop
}

async fn client() -> anyhow::Result<(kube::Client, kube::Config)> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| anyhow::anyhow!("no Kubernetes configuration (set KUBECONFIG): {e}"))?;
    let client = kube::Client::try_from(config.clone())?;
    Ok((client, config))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let (client, config) = client().await?;
    let (host, port) = match &args.apiserver {
        Some(hp) => {
            let (h, p) = hp
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("--apiserver {hp:?} is not HOST:PORT"))?;
            (h.to_owned(), p.parse()?)
        }
        None => (
            config.cluster_url.host().unwrap_or("127.0.0.1").to_owned(),
            config.cluster_url.port_u16().unwrap_or(443),
        ),
    };
    for m in &args.images {
        anyhow::ensure!(
            m.binary.is_file(),
            "--image {}: {} is not a file",
            m.name,
            m.binary.display()
        );
    }
    let pass_env = args
        .pass_env
        .iter()
        .filter_map(|n| std::env::var(n).ok().map(|v| (n.clone(), v)))
        .collect();
    std::fs::create_dir_all(&args.run_dir)?;
    let config = runner::RunnerConfig {
        node_name: args.node_name,
        run_dir: std::fs::canonicalize(&args.run_dir)?,
        images: ImageMap::new(args.images),
        apiserver_host: host,
        apiserver_port: port,
        host_ip: "127.0.0.1".into(),
        path_env: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        pass_env,
        backoff_initial: Duration::from_millis(args.backoff_initial_ms),
        backoff_max: Duration::from_secs(args.backoff_max_secs),
        lock_dir: std::env::temp_dir(),
        first_block: args
            .pod_ip_block
            .unwrap_or((std::process::id() % 254 + 1) as u8),
    };
    let stop = stop_token(args.ttl);
    runner::run(client, config, stop).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Ingress(args) => {
            let (client, _) = client().await?;
            let stop = stop_token(args.ttl);
            ingress::serve(client, args.listen, args.ingress_class, stop).await
        }
    }
}
