//! Runs the gcloudcx service: the Open Messaging webhook and the consumer
//! of `um.to-cx`.

use crate::machinery::bus::Route;
use crate::machinery::runtime::Runtime;

use super::deliver::ToGenesysHandler;
use super::webhook::{WebhookState, routes};

pub async fn run(runtime: Runtime) -> anyhow::Result<()> {
    let shutdown = runtime.shutdown.clone();
    let routes = routes(WebhookState {
        config: runtime.config.clone(),
        publisher: runtime.publisher.clone(),
        metrics: runtime.metrics.clone(),
    });
    let (bound, server) = runtime
        .server()
        .with_max_inflight(runtime.settings.max_inflight_requests)
        .merge(routes)
        .serve(runtime.settings.listen, shutdown.clone())
        .await?;
    tracing::info!(address = %bound, "gcloudcx listening");
    let handler = ToGenesysHandler::new(
        runtime.config.clone(),
        runtime.http.clone(),
        runtime.store.clone(),
        runtime.metrics.clone(),
    );
    let consumer = runtime.consumer(Route::ToCx);
    let consuming = tokio::spawn(consumer.run(handler, shutdown.clone()));
    let served = server.await;
    shutdown.cancel();
    let _ = consuming.await;
    runtime.bus.close().await;
    served??;
    Ok(())
}
