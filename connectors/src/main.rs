//! `um-connector <service>`: runs one service of the data plane (a
//! messaging platform, `gcloudcx`, `api`). Settings come from the
//! environment ([`um_connector::machinery::settings`]), tenants from the mounted
//! configuration file.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use um_connector::machinery::runtime::Runtime;
use um_connector::machinery::settings::Settings;
use um_connector::registry::{self, Service};

async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    token.cancel();
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env(std::env::args().nth(1)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("um-connector: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = um_telemetry::init(
        &settings.service,
        um_connector::LOG_HOMES,
        &settings.log_level,
        settings.log_format,
    ) {
        eprintln!("um-connector: {error}");
        return ExitCode::from(2);
    }
    let Some(service) = registry::lookup(&settings.service) else {
        tracing::error!(
            service = %settings.service,
            known = ?registry::names(),
            "this build has no such service"
        );
        return ExitCode::from(2);
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_signal(shutdown.clone()));
    let runtime = match Runtime::start(settings, shutdown.clone()).await {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(service = %runtime.settings.service, "started");
    runtime.notify_lifecycle("started").await;
    let lifecycle = runtime.clone();
    let result = match service {
        Service::Platform(platform) => {
            um_connector::machinery::service::run_platform(runtime, platform).await
        }
        Service::Custom(run) => run(runtime).await,
    };
    lifecycle.notify_lifecycle("stopped").await;
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "service failed");
            ExitCode::FAILURE
        }
    }
}
