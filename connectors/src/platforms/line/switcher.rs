//! Hand the guest to the tenant's Switcher destination when the chat ends.
//!
//! PROPOSED CONTRACT, NOT LINE'S DOCUMENTED API. LINE's Switcher API is
//! available to contracted corporate accounts only and its reference is not
//! public; what is public (LINE Developers console, integrator guides) is
//! that a channel has a service code, a Switcher secret and destination
//! ids. Until the real reference is at hand, the connector speaks this
//! contract, which the simulator implements:
//!
//! `POST {api base}/switcher/v1/switch`, JSON body
//! `{"serviceCode", "destinationId", "userId", "note"?}`, header
//! `X-Line-Switcher-Signature: base64(HMAC-SHA256(switcher secret, body))`
//! (the secret never travels); 200 on success, errors as `{message}`.
//!
//! Trigger: an agent → guest envelope whose native payload is
//! `{"switcher": {"note"?: "..."}}` (what an end-of-chat flow or the
//! commander sends; Genesys Open Messaging itself has no "conversation
//! ended" event).

use serde_json::{Value, json};

use super::channel::SwitcherSettings;
use super::client::LineCallError;
use super::signature;

pub const PATH: &str = "/switcher/v1/switch";
pub const SIGNATURE_HEADER: &str = "x-line-switcher-signature";

/// The request body (compact JSON, signed as sent).
pub fn switch_body(settings: &SwitcherSettings<'_>, user_id: &str, note: Option<&str>) -> Vec<u8> {
    let mut body = json!({
        "serviceCode": settings.service_code,
        "destinationId": settings.destination_id,
        "userId": user_id,
    });
    if let Some(note) = note {
        body["note"] = Value::String(note.to_owned());
    }
    body.to_string().into_bytes()
}

pub async fn switch(
    http: &reqwest::Client,
    api_base: &str,
    settings: &SwitcherSettings<'_>,
    user_id: &str,
    note: Option<&str>,
) -> Result<(), LineCallError> {
    let body = switch_body(settings, user_id, note);
    let response = http
        .post(format!("{api_base}{PATH}"))
        .header("Content-Type", "application/json")
        .header(
            SIGNATURE_HEADER,
            signature::sign(settings.secret.expose(), &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| LineCallError::Transport {
            step: "switch",
            detail: e.without_url().to_string(),
        })?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or_default();
    Err(LineCallError::Status {
        step: "switch",
        status,
        retry_after: None,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use um_config::Secret;

    #[test]
    fn body_names_service_destination_and_user_but_not_the_secret() {
        let secret = Secret::new("switch-secret");
        let settings = SwitcherSettings {
            service_code: "svc-1",
            destination_id: "dest-9",
            secret: &secret,
        };
        let body = switch_body(&settings, "U1234", Some("chat closed"));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"serviceCode": "svc-1", "destinationId": "dest-9", "userId": "U1234",
                   "note": "chat closed"})
        );
        assert!(!String::from_utf8(body).unwrap().contains("switch-secret"));
    }
}
