//! The services this binary runs: one line per service.
//!
//! A messaging platform is registered as [`Service::Platform`] and run by
//! the generic machinery ([`crate::service::run_platform`]); services with
//! their own shape (gcloudcx, api) as [`Service::Custom`].

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::platform::MessagingPlatform;
use crate::runtime::Runtime;

/// A service that wires its own routes and consumers from the [`Runtime`].
pub type CustomService = fn(Runtime) -> BoxFuture<'static, anyhow::Result<()>>;

pub enum Service {
    Platform(Arc<dyn MessagingPlatform>),
    Custom(CustomService),
}

/// The service named `name` (`UM_SERVICE`), if this build has it.
pub fn lookup(name: &str) -> Option<Service> {
    #[allow(clippy::match_single_binding)]
    match name {
        "telegram" => Some(Service::Platform(Arc::new(crate::telegram::Telegram))),
        "viber" => Some(Service::Platform(Arc::new(crate::viber::Viber))),
        "line" => Some(Service::Platform(Arc::new(crate::line::Line))),
        "teams" => Some(Service::Platform(Arc::new(crate::teams::Teams::default()))),
        "slack" => Some(Service::Platform(Arc::new(crate::slack::Slack))),
        "gcloudcx" => Some(Service::Custom(|runtime| {
            Box::pin(crate::gcloudcx::run(runtime))
        })),
        _ => None,
    }
}

/// Every name [`lookup`] knows, for the error message of a wrong name.
pub const NAMES: &[&str] = &["gcloudcx", "line", "slack", "teams", "telegram", "viber"];
