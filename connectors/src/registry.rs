//! The services this binary runs: one line per service.
//!
//! A messaging platform is registered as [`Service::Platform`] and run by
//! the generic machinery ([`crate::machinery::service::run_platform`]); services with
//! their own shape (gcloudcx) as [`Service::Custom`]. Which platforms exist
//! and which of them this build serves is said once, in
//! [`um_config::Platform`]; a test keeps this list and that table equal.

use std::sync::Arc;

use futures::future::BoxFuture;
use um_config::{GCLOUDCX_SERVICE, Platform};

use crate::machinery::runtime::Runtime;
use crate::platform::MessagingPlatform;

/// A service that wires its own routes and consumers from the [`Runtime`].
pub type CustomService = fn(Runtime) -> BoxFuture<'static, anyhow::Result<()>>;

pub enum Service {
    Platform(Arc<dyn MessagingPlatform>),
    Custom(CustomService),
}

/// The connector of a supported platform; `None` for a preview one.
fn platform(platform: Platform) -> Option<Arc<dyn MessagingPlatform>> {
    Some(match platform {
        Platform::Telegram => Arc::new(crate::platforms::telegram::Telegram),
        Platform::Line => Arc::new(crate::platforms::line::Line),
        Platform::Slack => Arc::new(crate::platforms::slack::Slack),
        Platform::Teams => Arc::new(crate::platforms::teams::Teams::default()),
        Platform::Viber => Arc::new(crate::platforms::viber::Viber),
        _ => return None,
    })
}

/// The service named `name` (`UM_SERVICE`), if this build has it.
pub fn lookup(name: &str) -> Option<Service> {
    if name == GCLOUDCX_SERVICE {
        return Some(Service::Custom(|runtime| {
            Box::pin(crate::gcloudcx::run(runtime))
        }));
    }
    let known = Platform::ALL.iter().find(|p| p.as_str() == name)?;
    platform(*known).map(Service::Platform)
}

/// Every name [`lookup`] knows, for the error message of a wrong name.
pub fn names() -> Vec<&'static str> {
    std::iter::once(GCLOUDCX_SERVICE)
        .chain(Platform::supported().map(Platform::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The platform table's Supported flag, the operator's `connector_runs`
    /// and this registry say the same thing.
    #[test]
    fn the_registry_serves_exactly_the_supported_platforms() {
        for &known in Platform::ALL {
            let served = lookup(known.as_str()).is_some();
            assert_eq!(served, known.is_supported(), "{known}");
            assert_eq!(served, um_config::connector_runs(known.as_str()), "{known}");
            if let Some(Service::Platform(connector)) = lookup(known.as_str()) {
                assert_eq!(connector.platform(), known);
            }
        }
        assert!(matches!(lookup(GCLOUDCX_SERVICE), Some(Service::Custom(_))));
        assert!(um_config::connector_runs(GCLOUDCX_SERVICE));
        assert!(lookup("api").is_none() && !um_config::connector_runs("api"));
        assert_eq!(names().len(), 1 + Platform::supported().count());
    }
}
