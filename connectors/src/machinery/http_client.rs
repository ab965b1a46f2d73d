//! Outbound HTTP: the shared reqwest clients (rustls) of a service, with the
//! cluster's outbound proxy and timeouts on every request, rebuilt when the
//! proxy setting changes; and the pieces every platform needs to turn an
//! answer into a delivery outcome (429 + `Retry-After`).
//!
//! Two kinds of URL are fetched. A platform's own API (configured or its
//! well-known host) goes through [`HttpClients::client`]. A URL that came
//! from outside (a guest's file, an agent's attachment) goes through
//! [`HttpClients::outside`]: judged by [`crate::machinery::url_policy`]
//! first, its name resolved by a resolver that drops refused addresses (so
//! a name pointing at 127.0.0.1 connects nowhere), and each redirect judged
//! again before it is followed (reqwest drops the `Authorization` of a
//! request redirected to another host). Behind an outbound
//! proxy the proxy resolves names: the connector then checks what the name
//! resolves to here before sending, and the proxy should enforce egress.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use um_config::ClusterSettings;
use url::Host;

use crate::machinery::envelope::ReasonCode;
use crate::machinery::url_policy::{
    FetchAllow, FetchRefused, FetchRules, Route, judge_redirect, judge_str,
};
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

fn configured_proxy(settings: &ClusterSettings) -> Option<&str> {
    settings.outbound_proxy.as_deref().filter(|p| !p.is_empty())
}

/// Timeouts, user agent and `settings.outbound_proxy` (for http and https).
fn builder(settings: &ClusterSettings) -> Result<reqwest::ClientBuilder, HttpClientError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("universal-messaging/", env!("CARGO_PKG_VERSION")));
    match configured_proxy(settings) {
        Some(proxy) => {
            let proxy_cfg =
                reqwest::Proxy::all(proxy).map_err(|source| HttpClientError::Proxy {
                    proxy: redact_userinfo(proxy),
                    source,
                })?;
            Ok(builder.proxy(proxy_cfg))
        }
        // No configured proxy: do not silently pick one up from the pod env.
        None => Ok(builder.no_proxy()),
    }
}

/// Builds a client honouring `settings.outbound_proxy` (for http and https).
pub fn build_client(settings: &ClusterSettings) -> Result<reqwest::Client, HttpClientError> {
    builder(settings)?.build().map_err(HttpClientError::Build)
}

/// Resolves names like the system does, and drops the addresses
/// [`FetchAllow::check_address`] refuses; a name left with none fails
/// with [`FetchRefused::Address`]. Listed names keep all their addresses.
#[derive(Debug, Clone)]
struct PolicyResolver {
    allow: Arc<FetchAllow>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let addrs = resolve_allowed(&allow, name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

async fn resolve_allowed(
    allow: &FetchAllow,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    if allow.allows_host(host) {
        return Ok(resolved);
    }
    let mut refused = None;
    let kept: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match allow.check_address(addr.ip()) {
            Ok(()) => true,
            Err(kind) => {
                refused.get_or_insert((addr.ip(), kind));
                false
            }
        })
        .collect();
    match refused {
        Some((address, kind)) if kept.is_empty() => Err(Box::new(FetchRefused::Address {
            host: host.to_owned(),
            address,
            kind,
        })),
        _ => Ok(kept),
    }
}

/// Follows a redirect only where [`judge_redirect`] lets it.
fn judged_redirects(allow: Arc<FetchAllow>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match judge_redirect(attempt.url(), attempt.previous(), &allow) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// The client for URLs from outside: judged, names resolved through the
/// policy, redirects judged. Cheap to clone.
#[derive(Clone)]
pub struct OutsideClient {
    /// Through [`PolicyResolver`], redirects judged.
    checked: reqwest::Client,
    /// For the configured base's origin ([`Route::Configured`]): the
    /// system resolver and no redirects (where one leads is not configured).
    configured: reqwest::Client,
    allow: Arc<FetchAllow>,
    proxied: bool,
}

impl std::fmt::Debug for OutsideClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutsideClient")
            .field("allow", &self.allow.to_string())
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

impl OutsideClient {
    fn build(settings: &ClusterSettings, allow: &FetchAllow) -> Result<Self, HttpClientError> {
        let proxy = configured_proxy(settings);
        // The proxy itself may well be on a private address.
        let proxy_host = proxy
            .and_then(|p| url::Url::parse(p).ok())
            .and_then(|p| p.host_str().map(str::to_owned));
        let resolver_allow = match &proxy_host {
            Some(host) => allow.clone().with_host(host),
            None => allow.clone(),
        };
        let checked = builder(settings)?
            .redirect(judged_redirects(Arc::new(allow.clone())))
            .dns_resolver(Arc::new(PolicyResolver {
                allow: Arc::new(resolver_allow),
            }))
            .build()
            .map_err(HttpClientError::Build)?;
        let configured = builder(settings)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(HttpClientError::Build)?;
        Ok(Self {
            checked,
            configured,
            allow: Arc::new(allow.clone()),
            proxied: proxy.is_some(),
        })
    }

    /// The client to fetch `url` with, once [`judge_str`] passed it.
    /// Callers that take a client (and a URL) use this; others [`Self::get`].
    pub async fn client_for(
        &self,
        url: &str,
        rules: FetchRules<'_>,
    ) -> Result<reqwest::Client, FetchRefused> {
        let (url, route) = judge_str(url, rules, &self.allow)?;
        if route == Route::Configured {
            return Ok(self.configured.clone());
        }
        if self.proxied
            && let Some(Host::Domain(host)) = url.host()
        {
            // The proxy resolves the name; check what it means here. A name
            // only the proxy can resolve is left to the proxy.
            if let Err(error) = resolve_allowed(&self.allow, host).await
                && let Ok(refused) = error.downcast::<FetchRefused>()
            {
                return Err(*refused);
            }
        }
        Ok(self.checked.clone())
    }

    /// A GET of `url` from outside, judged first.
    pub async fn get(
        &self,
        url: &str,
        rules: FetchRules<'_>,
    ) -> Result<reqwest::RequestBuilder, FetchRefused> {
        Ok(self.client_for(url, rules).await?.get(url))
    }
}

/// Why a request failed if the fetch policy refused its address while
/// connecting (a name resolving to refused addresses only).
pub fn refusal(error: &reqwest::Error) -> Option<FetchRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<FetchRefused>() {
            return Some(refused.clone());
        }
        source = current.source();
    }
    None
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

struct Clients {
    proxy: Option<String>,
    platform: reqwest::Client,
    outside: OutsideClient,
}

impl Clients {
    fn build(settings: &ClusterSettings, allow: &FetchAllow) -> Result<Self, HttpClientError> {
        Ok(Self {
            proxy: settings.outbound_proxy.clone(),
            platform: build_client(settings)?,
            outside: OutsideClient::build(settings, allow)?,
        })
    }
}

/// The service's shared clients; cheap to clone.
#[derive(Clone)]
pub struct HttpClients {
    inner: Arc<RwLock<Clients>>,
    allow: Arc<FetchAllow>,
}

impl HttpClients {
    /// With no address allowed beyond the policy's.
    pub fn new(settings: &ClusterSettings) -> Result<Self, HttpClientError> {
        Self::with_fetch_allow(settings, FetchAllow::default())
    }

    /// `allow`: what URLs from outside may be fetched from although the
    /// policy refuses it (`UM_FETCH_ALLOW`).
    pub fn with_fetch_allow(
        settings: &ClusterSettings,
        allow: FetchAllow,
    ) -> Result<Self, HttpClientError> {
        Ok(Self {
            inner: Arc::new(RwLock::new(Clients::build(settings, &allow)?)),
            allow: Arc::new(allow),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Clients> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// For the platform's own API.
    pub fn client(&self) -> reqwest::Client {
        self.read().platform.clone()
    }

    /// For URLs from outside ([`OutsideClient`]).
    pub fn outside(&self) -> OutsideClient {
        self.read().outside.clone()
    }

    /// Rebuilds the clients if the proxy setting changed.
    pub fn update(&self, settings: &ClusterSettings) -> Result<bool, HttpClientError> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if guard.proxy == settings.outbound_proxy {
            return Ok(false);
        }
        *guard = Clients::build(settings, &self.allow)?;
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

/// A transport error (connect, timeout, reset) is worth a retry, but for a
/// URL the fetch policy refused ([`refusal`]). The URL is dropped from the
/// text: platform URLs can embed a token.
pub fn transport_error(step: &str, error: &reqwest::Error) -> DeliveryError {
    if let Some(refused) = refusal(error) {
        return DeliveryError::permanent(
            ReasonCode::MessageNotAllowed,
            format!("{step}: {refused}"),
        );
    }
    let error = error.without_url_ref();
    DeliveryError::retry(format!("{step}: {error}"))
}

/// What went wrong with a request, for a log or an error answer: the
/// policy's refusal, or the kind of transport error (never the URL).
pub fn fetch_failure(step: &str, error: &reqwest::Error) -> String {
    match refusal(error) {
        Some(refused) => format!("{step}: {refused}"),
        None => format!("{step}: {}", error.without_url_ref()),
    }
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
