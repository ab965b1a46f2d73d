//! `POST /oauth/token` (client credentials) and Bearer enforcement with the
//! per-token rate limit on `/api/v2/**`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::error_body::{ErrorBody, oauth_error, too_many_requests};
use super::state::{GenesysState, RateWindow, Token};
use crate::recording::lock;

/// The OAuth client a request was authenticated as.
#[derive(Clone)]
pub(crate) struct ClientId(pub String);

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

pub(crate) async fn token(
    State(state): State<Arc<GenesysState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    // The SDKs send Basic only; some clients put the credentials in the form.
    let credentials = basic_credentials(&headers)
        .or_else(|| Some((field("client_id")?, field("client_secret")?)));
    let Some((client_id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials are required",
        );
    };
    let known = lock(&state.clients)
        .get(&client_id)
        .is_some_and(|expected| *expected == secret);
    if !known {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client not found: invalid_client",
        );
    }
    let lifetime = lock(&state.config).token_lifetime;
    let access_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    lock(&state.tokens).insert(
        access_token.clone(),
        Token {
            client_id,
            expires_at: Instant::now() + lifetime,
        },
    );
    Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
    }))
    .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Rejects missing/unknown/expired tokens with 401 and over-limit tokens
/// with 429 + Retry-After, like the platform API gateway.
pub(crate) async fn require_bearer(
    State(state): State<Arc<GenesysState>>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let Some(token) = bearer(request.headers()).map(str::to_owned) else {
        return ErrorBody::new(
            401,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        )
        .into_response();
    };
    let client_id = {
        let tokens = lock(&state.tokens);
        match tokens.get(&token) {
            Some(found) if found.expires_at > Instant::now() => found.client_id.clone(),
            _ => {
                return ErrorBody::new(401, "bad.credentials", "Invalid login credentials.")
                    .into_response();
            }
        }
    };
    let limit = lock(&state.config).rate_limit_per_minute;
    if limit > 0
        && let Some(retry_after) = over_limit(&state, &token, limit)
    {
        return too_many_requests().into_response_with_retry(Some(retry_after));
    }
    request.extensions_mut().insert(ClientId(client_id));
    next.run(request).await
}

/// Counts the request in the token's one-minute window; returns the
/// seconds until the window resets when the limit is exceeded.
fn over_limit(state: &GenesysState, token: &str, limit: u32) -> Option<u64> {
    const WINDOW: Duration = Duration::from_secs(60);
    let now = Instant::now();
    let mut windows = lock(&state.rate);
    let window = windows.entry(token.to_owned()).or_insert(RateWindow {
        started: now,
        count: 0,
    });
    if now.duration_since(window.started) >= WINDOW {
        *window = RateWindow {
            started: now,
            count: 0,
        };
    }
    if window.count >= limit {
        let left = WINDOW.saturating_sub(now.duration_since(window.started));
        let secs = u64::try_from(left.as_millis().div_ceil(1000)).unwrap_or(60);
        return Some(secs.max(1));
    }
    window.count += 1;
    None
}
