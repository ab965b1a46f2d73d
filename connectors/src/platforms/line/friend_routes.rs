//! The add-friend QR code of a tenant's LINE Official Account, for the
//! administrator who applied the Tenant (the operator links it from the
//! Tenant's status):
//!
//! - `GET /line/{tenant}/qr.svg` and `GET /line/{tenant}/qr.png`: the QR
//!   code of `https://line.me/R/ti/p/%40<basicId>`;
//! - `GET /line/{tenant}/friend-link`: `{basicId, url, qrCode, ...}`.
//!
//! The basic id comes from LINE (`GET /v2/bot/info`) with the tenant's own
//! channel access token, and is kept in Redis for [`BOT_INFO_TTL`] (cleared
//! when the tenant's configuration changes), so scanning a printed poster's
//! source does not call LINE each time. Nothing here is secret: the basic id
//! is what LINE prints on the account's public page; the token never leaves
//! the request header.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use um_config::{Platform, Secret, TenantConfig};

use super::add_friend::{BasicIdError, FriendLink, friend_link};
use super::channel::{Channel, channel};
use super::client::{LineApi, LineCallError, access_token, forget_token};
use super::qr::{QrRenderError, render_png, render_svg};
use super::types::BotInfo;
use crate::machinery::server::{ApiError, tenant_or_404};
use crate::platform::PlatformContext;

/// Store kind of the cached `/v2/bot/info` answer (id [`BOT_INFO_ID`]).
pub const BOT_INFO_KIND: &str = "line-bot-info";
pub const BOT_INFO_ID: &str = "info";
/// A basic id never changes; a premium id may be bought later.
pub const BOT_INFO_TTL: Duration = Duration::from_secs(6 * 3600);
/// How long browsers and proxies may keep a QR code or link.
const CACHE_CONTROL_OK: &str = "public, max-age=3600";

#[derive(Debug, thiserror::Error)]
enum FriendLinkError {
    #[error("{0}")]
    NotFound(String),
    #[error("tenant {tenant}: {source}")]
    Line {
        tenant: String,
        source: Box<LineCallError>,
    },
    #[error("tenant {tenant}: {source}")]
    BadAnswer {
        tenant: String,
        source: BasicIdError,
    },
    #[error("tenant {tenant}: {source}")]
    Render {
        tenant: String,
        source: QrRenderError,
    },
}

impl From<FriendLinkError> for ApiError {
    fn from(error: FriendLinkError) -> Self {
        let message = error.to_string();
        let bad_gateway = |code, message| ApiError::new(StatusCode::BAD_GATEWAY, code, message);
        match error {
            FriendLinkError::NotFound(_) => ApiError::not_found(message),
            FriendLinkError::Line { source, .. } => match *source {
                LineCallError::Config { .. } => ApiError::not_found(message),
                LineCallError::Status { status, .. } => {
                    bad_gateway("line_refused", refusal_hint(status, message))
                }
                LineCallError::Transport { .. } => bad_gateway("line_unreachable", message),
            },
            FriendLinkError::BadAnswer { .. } => bad_gateway("line_bad_answer", message),
            FriendLinkError::Render { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "render_failed", message)
            }
        }
    }
}

/// What an administrator does about a refusal.
fn refusal_hint(status: u16, message: String) -> String {
    match status {
        401 | 403 => format!(
            "{message} (check the channel access token, or channel id and secret, in the Tenant's Secret)"
        ),
        _ => message,
    }
}

fn line_tenant(ctx: &PlatformContext, key: &str) -> Result<TenantConfig, FriendLinkError> {
    let tenant = tenant_or_404(&ctx.config, key)
        .map_err(|_| FriendLinkError::NotFound(format!("no LINE tenant {key:?}")))?;
    if tenant.platform != Platform::Line {
        return Err(FriendLinkError::NotFound(format!("no LINE tenant {key:?}")));
    }
    Ok(tenant)
}

async fn cached_bot_info(ctx: &PlatformContext, tenant: &str) -> Option<BotInfo> {
    match ctx.store.get(tenant, BOT_INFO_KIND, BOT_INFO_ID).await {
        Ok(Some(text)) => serde_json::from_str(&text).ok(),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(tenant, error = %error, "cached LINE bot info not read; asking LINE");
            None
        }
    }
}

/// `/v2/bot/info` with the tenant's token. An issued token LINE refuses
/// (revoked before its expiry) is forgotten and re-issued once.
async fn fetch_bot_info(
    ctx: &PlatformContext,
    line: &Channel<'_>,
) -> Result<BotInfo, LineCallError> {
    let http = ctx.http();
    let ask = |token: Secret| {
        let http = http.clone();
        let endpoints = line.endpoints.clone();
        async move {
            LineApi {
                http: &http,
                endpoints: &endpoints,
                token: &token,
            }
            .bot_info()
            .await
        }
    };
    let token = access_token(&http, &ctx.store, line).await?;
    match ask(token).await {
        Err(LineCallError::Status { status: 401, .. }) if line.access_token.is_none() => {
            forget_token(&ctx.store, line).await;
            let token = access_token(&http, &ctx.store, line).await?;
            ask(token).await
        }
        other => other,
    }
}

async fn bot_info(
    ctx: &PlatformContext,
    tenant: &TenantConfig,
) -> Result<BotInfo, FriendLinkError> {
    let Some(line) = channel(tenant) else {
        return Err(FriendLinkError::NotFound(format!(
            "tenant {} has no LINE channel configured",
            tenant.key
        )));
    };
    if let Some(info) = cached_bot_info(ctx, &tenant.key).await {
        return Ok(info);
    }
    let info = fetch_bot_info(ctx, &line)
        .await
        .map_err(|source| FriendLinkError::Line {
            tenant: tenant.key.clone(),
            source: Box::new(source),
        })?;
    if let Ok(json) = serde_json::to_string(&info)
        && let Err(error) = ctx
            .store
            .set(&tenant.key, BOT_INFO_KIND, BOT_INFO_ID, &json, BOT_INFO_TTL)
            .await
    {
        tracing::warn!(tenant = %tenant.key, error = %error, "LINE bot info not cached");
    }
    Ok(info)
}

async fn link_of(ctx: &PlatformContext, key: &str) -> Result<FriendLink, FriendLinkError> {
    let tenant = line_tenant(ctx, key)?;
    let info = bot_info(ctx, &tenant).await?;
    friend_link(&info, &tenant.webhook_url).map_err(|source| FriendLinkError::BadAnswer {
        tenant: tenant.key.clone(),
        source,
    })
}

/// Drops the cached bot info (the tenant's channel or token changed).
pub async fn forget_bot_info(ctx: &PlatformContext, tenant: &str) {
    if let Err(error) = ctx.store.delete(tenant, BOT_INFO_KIND, BOT_INFO_ID).await {
        tracing::warn!(tenant, error = %error, "cached LINE bot info not forgotten");
    }
}

fn answer(result: Result<Response, FriendLinkError>, key: &str) -> Response {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            if !matches!(error, FriendLinkError::NotFound(_)) {
                tracing::warn!(tenant = key, error = %error, "LINE add-friend link not available");
            }
            ApiError::from(error).into_response()
        }
    };
    let cache_control = if response.status().is_success() {
        CACHE_CONTROL_OK
    } else {
        "no-store"
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn render_error(tenant: &str) -> impl FnOnce(QrRenderError) -> FriendLinkError + '_ {
    move |source| FriendLinkError::Render {
        tenant: tenant.to_owned(),
        source,
    }
}

/// `GET /line/{tenant}/qr.svg`.
pub async fn qr_svg(State(ctx): State<PlatformContext>, Path(key): Path<String>) -> Response {
    let result = async {
        let link = link_of(&ctx, &key).await?;
        let svg = render_svg(&link.url).map_err(render_error(&key))?;
        Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
    }
    .await;
    answer(result, &key)
}

/// `GET /line/{tenant}/qr.png`.
pub async fn qr_png(State(ctx): State<PlatformContext>, Path(key): Path<String>) -> Response {
    let result = async {
        let link = link_of(&ctx, &key).await?;
        let png = render_png(&link.url).map_err(render_error(&key))?;
        Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
    }
    .await;
    answer(result, &key)
}

/// `GET /line/{tenant}/friend-link`.
pub async fn friend_link_json(
    State(ctx): State<PlatformContext>,
    Path(key): Path<String>,
) -> Response {
    let result = link_of(&ctx, &key)
        .await
        .map(|link| axum::Json(link).into_response());
    answer(result, &key)
}
