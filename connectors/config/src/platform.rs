//! The one list of messaging platforms. Everything else that names the set
//! of platforms (the CRD one-of, the connector registry, the chart values
//! and schema, the samples, the simulators and scenario lists) is derived
//! from this table or checked against it by a test.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Whether this build serves a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// A connector in this build serves it end to end.
    Supported,
    /// Declared in the API (CRD fields, samples) for what is to come; the
    /// operator reports its Tenants `Ready=False` with `PlatformNotSupported`
    /// and renders nothing for them.
    Preview,
}

macro_rules! platforms {
    ($( $(#[$meta:meta])* $variant:ident = $key:literal, $display:literal, $support:ident; )*) => {
        /// Every messaging platform of the reference system. The serde name
        /// is the service name, the URL path segment and the
        /// `spec.messaging` variant key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Platform {
            $( $(#[$meta])* #[serde(rename = $key)] $variant, )*
        }

        impl Platform {
            pub const ALL: &'static [Platform] = &[$(Platform::$variant),*];

            /// Service name, URL segment and variant key (camelCase).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Platform::$variant => $key, )*
                }
            }

            /// The name agents see in Genesys (custom attribute `media`).
            pub fn display_name(self) -> &'static str {
                match self {
                    $( Platform::$variant => $display, )*
                }
            }

            /// Whether this build serves the platform.
            pub fn support(self) -> Support {
                match self {
                    $( Platform::$variant => Support::$support, )*
                }
            }
        }
    };
}

platforms! {
    Telegram = "telegram", "Telegram", Supported;
    Line = "line", "LINE", Supported;
    Slack = "slack", "Slack", Supported;
    Teams = "teams", "Microsoft Teams", Supported;
    Viber = "viber", "Viber", Supported;
    Wechat = "wechat", "WeChat", Preview;
    Zalo = "zalo", "Zalo", Preview;
    AppleBusinessChat = "appleBusinessChat", "Apple Messages for Business", Preview;
    GoogleChat = "googleChat", "Google Chat", Preview;
    GoogleBusinessMessages = "googleBusinessMessages", "Google Business Messages", Preview;
    KakaoBizm = "kakaoBizm", "KakaoTalk (BizM)", Preview;
    KakaoInfobank = "kakaoInfobank", "KakaoTalk (Infobank)", Preview;
    Disqus = "disqus", "Disqus", Preview;
    Media4u = "media4u", "MediaSMS", Preview;
    PlusMessage = "plusMessage", "+Message", Preview;
    Bedore = "bedore", "Bedore", Preview;
}

impl Platform {
    /// Kubernetes object names must be lowercase DNS labels.
    pub fn object_name(self) -> String {
        format!("um-{}", self.as_str().to_ascii_lowercase())
    }

    pub fn is_supported(self) -> bool {
        self.support() == Support::Supported
    }

    /// The platforms this build serves, in table order.
    pub fn supported() -> impl Iterator<Item = Platform> {
        Self::ALL.iter().copied().filter(|p| p.is_supported())
    }
}

/// The service that carries messages to and from Genesys Cloud.
pub const GCLOUDCX_SERVICE: &str = "gcloudcx";

/// Whether this build's `um-connector` runs `service` (`UM_SERVICE`):
/// gcloudcx and every supported platform. The operator renders nothing for
/// any other service, so no Deployment of it can crash-loop.
pub fn connector_runs(service: &str) -> bool {
    service == GCLOUDCX_SERVICE
        || service
            .parse::<Platform>()
            .is_ok_and(|platform| platform.is_supported() && platform.as_str() == service)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ConfigError::UnknownPlatform(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_make_object_names() {
        for &platform in Platform::ALL {
            assert_eq!(platform.as_str().parse::<Platform>().unwrap(), platform);
            let json = serde_json::to_string(&platform).unwrap();
            assert_eq!(json, format!("\"{}\"", platform.as_str()));
            assert!(
                platform
                    .object_name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }
}
