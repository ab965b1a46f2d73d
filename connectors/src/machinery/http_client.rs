//! Outbound HTTP: one shared reqwest client (rustls) per service, with the
//! cluster's outbound proxy and timeouts on every request, rebuilt when the
//! proxy setting changes; and the pieces every platform needs to turn an
//! answer into a delivery outcome (429 + `Retry-After`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use um_config::ClusterSettings;

use crate::machinery::envelope::ReasonCode;
use crate::platform::DeliveryError;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("outbound proxy {proxy:?} is not a valid proxy URL: {source}")]
    Proxy {
        proxy: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Builds a client honouring `settings.outbound_proxy` (for http and https).
pub fn build_client(settings: &ClusterSettings) -> Result<reqwest::Client, HttpClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("universal-messaging/", env!("CARGO_PKG_VERSION")));
    match settings.outbound_proxy.as_deref().filter(|p| !p.is_empty()) {
        Some(proxy) => {
            let proxy_cfg =
                reqwest::Proxy::all(proxy).map_err(|source| HttpClientError::Proxy {
                    proxy: redact_userinfo(proxy),
                    source,
                })?;
            builder = builder.proxy(proxy_cfg);
        }
        // No configured proxy: do not silently pick one up from the pod env.
        None => builder = builder.no_proxy(),
    }
    builder.build().map_err(HttpClientError::Build)
}

/// A proxy URL may carry credentials (`http://user:pass@proxy`).
fn redact_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("[REDACTED]");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[unparseable]".to_owned(),
    }
}

/// The service's shared client; cheap to clone.
#[derive(Clone)]
pub struct HttpClients {
    inner: Arc<RwLock<(Option<String>, reqwest::Client)>>,
}

impl HttpClients {
    pub fn new(settings: &ClusterSettings) -> Result<Self, HttpClientError> {
        let client = build_client(settings)?;
        Ok(Self {
            inner: Arc::new(RwLock::new((settings.outbound_proxy.clone(), client))),
        })
    }

    pub fn client(&self) -> reqwest::Client {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Rebuilds the client if the proxy setting changed.
    pub fn update(&self, settings: &ClusterSettings) -> Result<bool, HttpClientError> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if guard.0 == settings.outbound_proxy {
            return Ok(false);
        }
        let client = build_client(settings)?;
        *guard = (settings.outbound_proxy.clone(), client);
        Ok(true)
    }
}

/// `Retry-After` as seconds or as an HTTP-date, relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    parse_retry_after(value, now)
}

pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 compatible.
    let date = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// The delivery outcome of a platform's HTTP answer: `Ok` for 2xx, `Retry`
/// for 429 (with `Retry-After`), 408 and 5xx, `Permanent` otherwise.
/// `detail` names the step ("sendMessage") and must not carry credentials.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    detail: &str,
) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let detail = format!("{detail}: HTTP {}", status.as_u16());
    match status {
        StatusCode::TOO_MANY_REQUESTS => Err(DeliveryError::Retry {
            after: retry_after(headers, Utc::now()),
            detail,
        }),
        StatusCode::REQUEST_TIMEOUT => Err(DeliveryError::retry(detail)),
        s if s.is_server_error() => Err(DeliveryError::Retry {
            after: retry_after(headers, Utc::now()),
            detail,
        }),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(DeliveryError::permanent(
            ReasonCode::MessageNotAllowed,
            detail,
        )),
        StatusCode::NOT_FOUND | StatusCode::GONE => Err(DeliveryError::permanent(
            ReasonCode::InvalidDestination,
            detail,
        )),
        StatusCode::PAYLOAD_TOO_LARGE => Err(DeliveryError::permanent(
            ReasonCode::InvalidMediaContentLength,
            detail,
        )),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(DeliveryError::permanent(
            ReasonCode::MediaTypeNotAllowed,
            detail,
        )),
        _ => Err(DeliveryError::permanent(ReasonCode::GeneralError, detail)),
    }
}

/// A transport error (connect, timeout, reset) is always worth a retry.
/// The URL is dropped from the text: platform URLs can embed a token.
pub fn transport_error(step: &str, error: &reqwest::Error) -> DeliveryError {
    let error = error.without_url_ref();
    DeliveryError::retry(format!("{step}: {error}"))
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let kind = if self.is_timeout() {
            "timeout"
        } else if self.is_connect() {
            "connection failed"
        } else if self.is_decode() {
            "cannot decode the answer"
        } else if self.is_body() {
            "body error"
        } else {
            "request failed"
        };
        match self.status() {
            Some(status) => format!("{kind} (HTTP {})", status.as_u16()),
            None => kind.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 10:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn classifies_answers() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(
            classify_response(StatusCode::TOO_MANY_REQUESTS, &headers, "send"),
            Err(DeliveryError::Retry {
                after: Some(Duration::from_secs(3)),
                detail: "send: HTTP 429".into()
            })
        );
        assert!(classify_response(StatusCode::OK, &headers, "send").is_ok());
        assert!(matches!(
            classify_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "send"),
            Err(DeliveryError::Retry { after: None, .. })
        ));
        assert!(matches!(
            classify_response(StatusCode::FORBIDDEN, &HeaderMap::new(), "send"),
            Err(DeliveryError::Permanent {
                reason: ReasonCode::MessageNotAllowed,
                ..
            })
        ));
    }

    #[test]
    fn proxy_credentials_never_printed() {
        let settings = ClusterSettings {
            outbound_proxy: Some("not a url with user:pw@".into()),
            default_commander_prefix: None,
        };
        if let Err(e) = build_client(&settings) {
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        assert_eq!(
            redact_userinfo("http://user:hunter2@proxy:3128"),
            "http://%5BREDACTED%5D@proxy:3128/"
        );
    }

    #[test]
    fn client_is_rebuilt_only_when_proxy_changes() {
        let clients = HttpClients::new(&ClusterSettings::default()).unwrap();
        assert!(!clients.update(&ClusterSettings::default()).unwrap());
        let with_proxy = ClusterSettings {
            outbound_proxy: Some("http://127.0.0.1:3128".into()),
            default_commander_prefix: None,
        };
        assert!(clients.update(&with_proxy).unwrap());
        assert!(!clients.update(&with_proxy).unwrap());
    }
}
