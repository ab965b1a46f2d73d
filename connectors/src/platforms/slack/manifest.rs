//! The app manifest of a tenant (paste into Slack's "Create an app → From a
//! manifest") and the registration page that finds it by customer id.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use um_config::TenantConfig;

use super::install::{BOT_SCOPES, html_escape, redirect_uri};
use crate::machinery::server::{ApiError, tenant_or_404};
use crate::platform::PlatformContext;

/// Bot events the bridge subscribes to: direct messages to the app (thread
/// replies included), and the app leaving a workspace.
pub const BOT_EVENTS: [&str; 3] = ["message.im", "app_uninstalled", "tokens_revoked"];

/// The manifest with this tenant's webhook (events and interactivity) and
/// OAuth redirect URLs.
pub fn manifest(tenant: &TenantConfig) -> Value {
    let name: String = tenant.display_name.chars().take(35).collect();
    json!({
        "display_information": {
            "name": name,
            "description": "Chat with our contact center",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": false,
                "messages_tab_enabled": true,
                "messages_tab_read_only_enabled": false,
            },
            "bot_user": {"display_name": name, "always_online": true},
        },
        "oauth_config": {
            "redirect_urls": [redirect_uri(tenant)],
            "scopes": {"bot": BOT_SCOPES},
        },
        "settings": {
            "event_subscriptions": {
                "request_url": tenant.webhook_url,
                "bot_events": BOT_EVENTS,
            },
            "interactivity": {"is_enabled": true, "request_url": tenant.webhook_url},
            "org_deploy_enabled": false,
            "socket_mode_enabled": false,
            "token_rotation_enabled": false,
        },
    })
}

pub async fn manifest_route(
    State(ctx): State<PlatformContext>,
    Path(tenant_key): Path<String>,
) -> Response {
    match tenant_or_404(&ctx.config, &tenant_key) {
        Ok(tenant) if tenant.platform == um_config::Platform::Slack => {
            axum::Json(manifest(&tenant)).into_response()
        }
        Ok(_) => ApiError::not_found(format!("no Slack tenant {tenant_key:?}")).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct RegisterQuery {
    customer: Option<String>,
}

const REGISTER_FORM: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connect Slack</title></head>\
<body><h1>Connect Slack</h1><form method=\"get\" action=\"/slack/register\">\
<label>Customer identifier <input name=\"customer\" required placeholder=\"namespace.name\"></label> \
<button type=\"submit\">Continue</button></form></body></html>";

/// `GET /slack/register`: a form for the customer identifier (tenant key);
/// with `?customer=` the page links the manifest and the install.
pub async fn register(
    State(ctx): State<PlatformContext>,
    Query(query): Query<RegisterQuery>,
) -> Response {
    let Some(customer) = query
        .customer
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
    else {
        return Html(REGISTER_FORM).into_response();
    };
    let tenant = match tenant_or_404(&ctx.config, &customer) {
        Ok(tenant) if tenant.platform == um_config::Platform::Slack => tenant,
        _ => return ApiError::not_found(format!("no Slack customer {customer:?}")).into_response(),
    };
    let manifest = serde_json::to_string_pretty(&manifest(&tenant)).unwrap_or_default();
    let key = html_escape(&tenant.key);

    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connect Slack</title></head><body>\
         <h1>Connect Slack for {name}</h1>\
         <ol><li>In Slack, choose <em>Create New App → From an app manifest</em> and paste:\
         <pre id=\"manifest\">{manifest}</pre></li>\
         <li>Put the app's signing secret, client id and client secret into the tenant's Slack settings.</li>\
         <li><a href=\"/slack/{key}/install\">Add to a Slack workspace</a></li></ol></body></html>",
        name = html_escape(&tenant.display_name),
        manifest = html_escape(&manifest),
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_the_tenant_urls() {
        let tenant = super::super::inbound::tests::tenant();
        let value = manifest(&tenant);
        assert_eq!(
            value["settings"]["event_subscriptions"]["request_url"],
            "https://um.example/slack/shop.acme"
        );
        assert_eq!(
            value["settings"]["interactivity"]["request_url"],
            "https://um.example/slack/shop.acme"
        );
        assert_eq!(
            value["oauth_config"]["redirect_urls"][0],
            "https://um.example/slack/shop.acme/oauth/callback"
        );
        assert_eq!(
            value["settings"]["event_subscriptions"]["bot_events"][0],
            "message.im"
        );
        assert_eq!(value["display_information"]["name"], "ACME");
    }
}
