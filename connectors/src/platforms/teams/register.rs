//! The registration page of a tenant's Teams bot and its app package:
//! `GET /teams/{tenant}/register` (what to enter in the Azure Bot
//! registration, the package version, the steps) and
//! `GET /teams/{tenant}/app-package.zip` (the package built on the last
//! tenant change, see [`super::platform::PACKAGE_KIND`]). Nothing secret is
//! shown: the app id and the messaging endpoint are what an admin enters.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use um_config::{Platform, TenantConfig};

use super::client::Bot;
use super::manifest::PackageState;
use super::platform::PACKAGE_KIND;
use crate::machinery::server::{ApiError, tenant_or_404};
use crate::platform::PlatformContext;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page (pure).
pub fn render_page(tenant: &TenantConfig, app_id: &str, state: Option<&PackageState>) -> String {
    let name = escape(&tenant.display_name);
    let endpoint = escape(&tenant.webhook_url);
    let package = match state {
        Some(state) => format!(
            "<a href=\"app-package.zip\">app-package.zip</a> (version {}, content {})",
            escape(&state.version),
            escape(&state.content_hash[..state.content_hash.len().min(12)])
        ),
        None => "not built yet (the connector builds it when the tenant is set up)".to_owned(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Teams bot registration: {name}</title></head><body>\n\
<h1>Microsoft Teams bot of {name}</h1>\n<dl>\n\
<dt>Microsoft App ID</dt><dd><code>{app_id}</code></dd>\n\
<dt>Messaging endpoint</dt><dd><code>{endpoint}</code></dd>\n\
<dt>App package</dt><dd>{package}</dd>\n</dl>\n<ol>\n\
<li>In the Azure portal, open the Azure Bot resource of app <code>{app_id}</code> and set its messaging endpoint to the URL above.</li>\n\
<li>Under Channels, enable Microsoft Teams.</li>\n\
<li>Upload the app package in the Teams admin center (Manage apps, Upload) or in Teams (Apps, Manage your apps, Upload an app). \
A new version is produced whenever the bot name, accent color or icons change; upload it again then.</li>\n\
</ol>\n</body></html>\n",
        app_id = escape(app_id),
    )
}

fn teams_tenant(ctx: &PlatformContext, key: &str) -> Result<(TenantConfig, Bot), ApiError> {
    let tenant = tenant_or_404(&ctx.config, key)?;
    if tenant.platform != Platform::Teams {
        return Err(ApiError::not_found(format!("no Teams tenant {key:?}")));
    }
    let bot = Bot::of(&tenant).map_err(ApiError::not_found)?;
    Ok((tenant, bot))
}

async fn package_state(
    ctx: &PlatformContext,
    tenant: &str,
) -> Result<Option<PackageState>, ApiError> {
    let text = ctx
        .store
        .get(tenant, PACKAGE_KIND, "state")
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
}

pub async fn page(State(ctx): State<PlatformContext>, Path(key): Path<String>) -> Response {
    let result = async {
        let (tenant, bot) = teams_tenant(&ctx, &key)?;
        let state = package_state(&ctx, &tenant.key).await?;
        Ok::<_, ApiError>(Html(render_page(&tenant, &bot.app_id, state.as_ref())))
    }
    .await;
    match result {
        Ok(page) => page.into_response(),
        Err(error) => error.into_response(),
    }
}

pub async fn package(State(ctx): State<PlatformContext>, Path(key): Path<String>) -> Response {
    let result = async {
        let (tenant, _) = teams_tenant(&ctx, &key)?;
        let state = package_state(&ctx, &tenant.key)
            .await?
            .ok_or_else(|| ApiError::not_found("the app package is not built yet"))?;
        let encoded = ctx
            .store
            .get(&tenant.key, PACKAGE_KIND, "zip")
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .ok_or_else(|| ApiError::not_found("the app package is not built yet"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string())
            })?;
        let filename = format!("{}-teams-{}.zip", tenant.key, state.version);
        Ok::<_, ApiError>(
            (
                [
                    (header::CONTENT_TYPE, "application/zip".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}\""),
                    ),
                ],
                bytes,
            )
                .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_what_to_register_escaped() {
        let mut tenant = super::super::inbound::tests::tenant();
        tenant.display_name = "ACME <Support> & Co".into();
        let state = PackageState {
            version: "1.0.2".into(),
            content_hash: "abcdef0123456789".into(),
        };
        let page = render_page(&tenant, "app-1", Some(&state));
        assert!(page.contains("ACME &lt;Support&gt; &amp; Co"));
        assert!(!page.contains("<Support>"));
        assert!(page.contains("<code>https://um.example/teams/shop.acme</code>"));
        assert!(page.contains("<code>app-1</code>"));
        assert!(page.contains("version 1.0.2, content abcdef012345"));
        assert!(render_page(&tenant, "app-1", None).contains("not built yet"));
    }
}
