//! OAuth v2 installs: one tenant's app installed into several workspaces.
//!
//! `GET /slack/{tenant}/install` redirects to Slack's authorize page with a
//! signed, expiring `state`; Slack sends the administrator back to
//! `GET /slack/{tenant}/oauth/callback?code=&state=`, where the code is
//! exchanged (`oauth.v2.access`) for the workspace's bot token, stored in
//! Redis per team ([`super::tenant::save_installation`]) and never logged.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use um_config::{Secret, TenantConfig};

use super::client::read_answer;
use super::tenant::{Installation, SlackTenant, save_installation};
use super::types::OAuthAccess;
use crate::machinery::server::{ApiError, tenant_or_404};
use crate::machinery::verify::{constant_time_eq, hmac_sha256};
use crate::platform::PlatformContext;

/// Bot scopes the bridge needs: direct messages in and out, files both ways.
pub const BOT_SCOPES: [&str; 5] = [
    "chat:write",
    "im:history",
    "files:read",
    "files:write",
    "users:read",
];
/// How long an install link stays valid.
pub const STATE_TTL: Duration = Duration::from_secs(15 * 60);

fn state_mac(client_secret: &Secret, tenant_key: &str, expires: i64) -> String {
    let mac = hmac_sha256(
        client_secret.expose().as_bytes(),
        format!("um-slack-install\n{tenant_key}\n{expires}").as_bytes(),
    );
    hex::encode(&mac[..16])
}

/// `state` of an authorize redirect: the tenant, an expiry, and a MAC keyed
/// with the tenant's client secret.
pub fn sign_state(client_secret: &Secret, tenant_key: &str, now: DateTime<Utc>) -> String {
    let expires = now.timestamp() + STATE_TTL.as_secs() as i64;
    format!(
        "{expires}.{}",
        state_mac(client_secret, tenant_key, expires)
    )
}

pub fn verify_state(
    client_secret: &Secret,
    tenant_key: &str,
    state: &str,
    now: DateTime<Utc>,
) -> bool {
    let Some((expires, mac)) = state.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    expires >= now.timestamp()
        && constant_time_eq(
            state_mac(client_secret, tenant_key, expires).as_bytes(),
            mac.as_bytes(),
        )
}

/// Where Slack sends the administrator back: under the tenant's webhook.
pub fn redirect_uri(tenant: &TenantConfig) -> String {
    format!(
        "{}/oauth/callback",
        tenant.webhook_url.trim_end_matches('/')
    )
}

/// Slack's authorize page for this tenant's app.
pub fn authorize_url(base_url: &str, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let mut url = format!("{base_url}/oauth/v2/authorize?");
    url.push_str(
        &url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("scope", &BOT_SCOPES.join(","))
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish(),
    );
    url
}

fn slack_tenant(ctx: &PlatformContext, tenant_key: &str) -> Result<TenantConfig, ApiError> {
    let tenant = tenant_or_404(&ctx.config, tenant_key)?;
    if tenant.platform != um_config::Platform::Slack {
        return Err(ApiError::not_found(format!(
            "no Slack tenant {tenant_key:?}"
        )));
    }
    Ok(tenant)
}

pub async fn install(
    State(ctx): State<PlatformContext>,
    Path(tenant_key): Path<String>,
) -> Response {
    let result = (|| {
        let tenant = slack_tenant(&ctx, &tenant_key)?;
        let slack =
            SlackTenant::of(&tenant).ok_or_else(|| ApiError::not_found("no Slack settings"))?;
        let (client_id, client_secret) = slack.oauth_client().ok_or_else(|| {
            ApiError::not_found(format!(
                "tenant {tenant_key} has no OAuth client (clientId, clientSecret)"
            ))
        })?;
        let state = sign_state(client_secret, &tenant.key, Utc::now());
        Ok::<_, ApiError>(Redirect::to(&authorize_url(
            &slack.base_url,
            client_id,
            &redirect_uri(&tenant),
            &state,
        )))
    })();
    match result {
        Ok(redirect) => redirect.into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn page(title: &str, text: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>",
        title = html_escape(title),
        text = html_escape(text)
    ))
}

pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn callback(
    State(ctx): State<PlatformContext>,
    Path(tenant_key): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    match complete_install(&ctx, &tenant_key, query).await {
        Ok(installation) => page(
            "Slack app installed",
            &format!(
                "The app is installed in workspace {} ({}). You can close this page.",
                installation.team_name.as_deref().unwrap_or("?"),
                installation.team_id
            ),
        )
        .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn complete_install(
    ctx: &PlatformContext,
    tenant_key: &str,
    query: CallbackQuery,
) -> Result<Installation, ApiError> {
    let tenant = slack_tenant(ctx, tenant_key)?;
    let slack = SlackTenant::of(&tenant).ok_or_else(|| ApiError::not_found("no Slack settings"))?;
    let (client_id, client_secret) = slack
        .oauth_client()
        .ok_or_else(|| ApiError::not_found("no OAuth client configured"))?;
    if let Some(error) = query.error {
        return Err(ApiError::bad_request(format!(
            "Slack did not authorise the install: {error}"
        )));
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return Err(ApiError::bad_request("code and state are required"));
    };
    if !verify_state(client_secret, &tenant.key, &state, Utc::now()) {
        return Err(ApiError::unauthorized(
            "install state is wrong or expired; start the install again",
        ));
    }
    let method = "oauth.v2.access";
    let response = ctx
        .http()
        .post(format!("{}/api/{method}", slack.base_url))
        .form(&[
            ("client_id", client_id),
            ("client_secret", client_secret.expose()),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri(&tenant).as_str()),
        ])
        .send()
        .await
        .map_err(|error| {
            ApiError::new(
                http::StatusCode::BAD_GATEWAY,
                "upstream",
                crate::machinery::http_client::transport_error(method, &error).to_string(),
            )
        })?;
    let answer = read_answer(method, response).await.map_err(|error| {
        ApiError::new(http::StatusCode::BAD_GATEWAY, "upstream", error.to_string())
    })?;
    let access: OAuthAccess = serde_json::from_value(serde_json::Value::Object(answer.rest))
        .map_err(|error| {
            ApiError::new(
                http::StatusCode::BAD_GATEWAY,
                "upstream",
                format!("{method}: unexpected answer: {error}"),
            )
        })?;
    let installation = Installation {
        team_id: access.team.id.clone(),
        team_name: access.team.name.clone(),
        enterprise_id: access.enterprise.as_ref().map(|e| e.id.clone()),
        enterprise_name: access.enterprise.as_ref().and_then(|e| e.name.clone()),
        bot_user_id: access.bot_user_id.clone(),
        bot_token: Secret::new(access.access_token),
        installed_at: Some(Utc::now().timestamp()),
    };
    save_installation(&ctx.store, &tenant.key, &installation)
        .await
        .map_err(|error| ApiError::unavailable(format!("install not stored: {error}")))?;
    tracing::info!(tenant = %tenant.key, team = %installation.team_id, "Slack app installed in a workspace");
    Ok(installation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_bound_to_tenant_secret_and_time() {
        let secret = Secret::new("client-secret");
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let state = sign_state(&secret, "shop.acme", now);
        assert!(verify_state(&secret, "shop.acme", &state, now));
        assert!(!verify_state(&secret, "shop.other", &state, now));
        assert!(!verify_state(&Secret::new("x"), "shop.acme", &state, now));
        let later = now + chrono::Duration::seconds(STATE_TTL.as_secs() as i64 + 1);
        assert!(!verify_state(&secret, "shop.acme", &state, later));
        assert!(!verify_state(&secret, "shop.acme", "garbage", now));
    }

    #[test]
    fn authorize_url_carries_client_scopes_redirect_and_state() {
        let url = authorize_url(
            "https://slack.com",
            "123.456",
            "https://um.example/slack/a.b/oauth/callback",
            "s.t",
        );
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/oauth/v2/authorize");
        let query: std::collections::BTreeMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "123.456");
        assert_eq!(query["scope"], BOT_SCOPES.join(","));
        assert_eq!(
            query["redirect_uri"],
            "https://um.example/slack/a.b/oauth/callback"
        );
        assert_eq!(query["state"], "s.t");
    }
}
