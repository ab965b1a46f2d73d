//! The Events API side of the Slack simulator: the bodies Slack posts to
//! an app (`event_callback` messages, `url_verification`, `block_actions`
//! interactivity) and their signed delivery with Slack's retries.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::{
    Attempt, EventDelivery, PostedMessage, SIGNATURE_HEADER, SlackSimulator, TIMESTAMP_HEADER, sign,
};
use crate::recording::lock;

/// The button with `action_id` in `blocks` (an `actions` element or a
/// section accessory) and the `block_id` of the block holding it.
pub(crate) fn find_button<'a>(
    blocks: &'a Value,
    action_id: &str,
) -> Option<(Option<&'a str>, &'a Value)> {
    blocks.as_array()?.iter().find_map(|block| {
        let block_id = block["block_id"].as_str();
        let in_actions = block["type"] == "actions";
        let elements = in_actions
            .then(|| block["elements"].as_array())
            .flatten()
            .into_iter()
            .flatten();
        let accessory = (block["type"] == "section")
            .then(|| block.get("accessory"))
            .flatten();
        elements
            .chain(accessory)
            .find(|element| element["type"] == "button" && element["action_id"] == action_id)
            .map(|button| (block_id, button))
    })
}

impl SlackSimulator {
    /// An `event_callback` carrying a `message.im` event from `user`.
    pub fn message_event(&self, team_id: &str, user: &str, channel: &str, text: &str) -> Value {
        let ts = self.ts();
        let workspace = self.state.workspace(team_id);
        let enterprise_id = workspace
            .as_ref()
            .and_then(|w| w.enterprise.as_ref())
            .map(|(id, _)| id.clone());
        json!({
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "enterprise_id": enterprise_id,
            "api_app_id": self.state.app_id(),
            "event": {
                "type": "message", "channel_type": "im", "user": user, "text": text,
                "channel": channel, "ts": ts, "event_ts": ts, "team": team_id,
            },
            "type": "event_callback",
            "event_id": self.state.id("Ev"),
            "event_time": chrono::Utc::now().timestamp(),
            "authorizations": [{
                "enterprise_id": enterprise_id, "team_id": team_id,
                "user_id": workspace.map(|w| w.bot_user_id), "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": self.state.id("4-"),
        })
    }

    /// A guest's reply inside the thread whose parent message is
    /// `thread_ts` (the parent's `ts`).
    pub fn thread_reply_event(
        &self,
        team_id: &str,
        user: &str,
        channel: &str,
        thread_ts: &str,
        text: &str,
    ) -> Value {
        let mut event = self.message_event(team_id, user, channel, text);
        event["event"]["thread_ts"] = json!(thread_ts);
        event["event"]["parent_user_id"] = json!(user);
        event
    }

    /// The outer `event_callback` of an app lifecycle event (no user, no
    /// channel, no authorizations: the app is gone from the workspace).
    fn lifecycle_event(&self, team_id: &str, event: Value) -> Value {
        json!({
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "api_app_id": self.state.app_id(),
            "event": event,
            "type": "event_callback",
            "event_id": self.state.id("Ev"),
            "event_time": chrono::Utc::now().timestamp(),
        })
    }

    /// `app_uninstalled`: the app was removed from `team_id`.
    pub fn app_uninstalled_event(&self, team_id: &str) -> Value {
        self.lifecycle_event(team_id, json!({"type": "app_uninstalled"}))
    }

    /// `tokens_revoked` for the bot token of `team_id` (Slack lists user
    /// ids, never tokens).
    pub fn tokens_revoked_event(&self, team_id: &str) -> Value {
        let bot_user = self
            .state
            .workspace(team_id)
            .map_or_else(|| format!("UB{team_id}"), |w| w.bot_user_id);
        self.lifecycle_event(
            team_id,
            json!({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [bot_user]}}),
        )
    }

    /// A message event with files (`subtype: file_share`).
    pub fn file_event(
        &self,
        team_id: &str,
        user: &str,
        channel: &str,
        text: &str,
        files: Vec<Value>,
    ) -> Value {
        let mut event = self.message_event(team_id, user, channel, text);
        event["event"]["subtype"] = json!("file_share");
        event["event"]["upload"] = json!(false);
        event["event"]["files"] = Value::Array(files);
        event
    }

    /// The `block_actions` payload of `user` tapping the button whose
    /// `action_id` is `action_id` in a posted message.
    pub fn block_actions(
        &self,
        message: &PostedMessage,
        user: &str,
        action_id: &str,
    ) -> Option<Value> {
        let (block_id, button) = find_button(message.blocks.as_ref()?, action_id)?;
        let workspace = self.state.workspace(&message.team_id);
        // Slack gives blocks posted without a block_id one of its own.
        let block_id = block_id.map_or_else(|| self.state.id("b"), str::to_owned);
        let mut action = json!({
            "type": "button", "action_id": action_id, "block_id": block_id,
            "text": button["text"], "action_ts": self.ts(),
        });
        if let Some(value) = button.get("value") {
            action["value"] = value.clone();
        }
        let mut container = json!({"type": "message", "message_ts": message.ts, "channel_id": message.channel, "is_ephemeral": false});
        if let Some(thread_ts) = &message.thread_ts {
            container["thread_ts"] = json!(thread_ts);
        }
        Some(json!({
            "type": "block_actions",
            "user": {"id": user, "username": format!("user-{}", user.to_lowercase()), "name": user, "team_id": message.team_id},
            "api_app_id": self.state.app_id(),
            "token": "deprecated-verification-token",
            "container": container,
            "trigger_id": format!("{}.{}.{}", self.state.next_id.fetch_add(1, Ordering::Relaxed), 98765, self.state.id("")),
            "team": {"id": message.team_id, "domain": workspace.as_ref().map(|w| w.team_name.to_lowercase())},
            "enterprise": workspace.as_ref().and_then(|w| w.enterprise.as_ref()).map(|(id, name)| json!({"id": id, "name": name})),
            "is_enterprise_install": false,
            "channel": {"id": message.channel, "name": "directmessage"},
            "message": {"type": "message", "ts": message.ts, "thread_ts": message.thread_ts, "text": message.text, "blocks": message.blocks},
            "actions": [action],
        }))
    }

    /// The posted message a tap on `action_id` lands on: the one with `ts`
    /// if given, else the latest that has such a button.
    pub fn message_with_action(&self, action_id: &str, ts: Option<&str>) -> Option<PostedMessage> {
        self.posted().into_iter().rev().find(|message| {
            ts.is_none_or(|ts| message.ts == ts)
                && message
                    .blocks
                    .as_ref()
                    .is_some_and(|blocks| find_button(blocks, action_id).is_some())
        })
    }

    pub(crate) fn ts(&self) -> String {
        let now = chrono::Utc::now();
        format!(
            "{}.{:06}",
            now.timestamp(),
            self.state.next_id.fetch_add(1, Ordering::Relaxed) % 1_000_000
        )
    }

    /// Signs `body` at `timestamp` with the app's current signing secret.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        sign(&lock(&self.state.options).signing_secret, timestamp, body)
    }

    /// Posts an Events API body (JSON) to `url` the way Slack does: signed,
    /// retried up to [`super::RetryPolicy::retries`] times with
    /// `X-Slack-Retry-Num` while the answer is not 2xx within the timeout.
    pub async fn send_event(&self, url: &str, event: &Value) -> EventDelivery {
        let body = event.to_string();
        self.deliver(url, body, "application/json").await
    }

    /// Posts an interactivity payload (form-encoded `payload=`), signed.
    pub async fn send_interaction(&self, url: &str, payload: &Value) -> EventDelivery {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        self.deliver(url, body, "application/x-www-form-urlencoded")
            .await
    }

    /// `url_verification` as Slack sends it when a request URL is saved.
    pub async fn verify_url(&self, url: &str, challenge: &str) -> EventDelivery {
        let body = json!({"token": "deprecated-verification-token", "challenge": challenge, "type": "url_verification"});
        self.deliver(url, body.to_string(), "application/json")
            .await
    }

    async fn deliver(&self, url: &str, body: String, content_type: &str) -> EventDelivery {
        let policy = lock(&self.state.options).retry;
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut response_body = None;
        for retry_num in 0..=policy.retries {
            if retry_num > 0 {
                tokio::time::sleep(policy.interval).await;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let mut request = self
                .state
                .http
                .post(url)
                .timeout(policy.timeout)
                .header("Content-Type", content_type)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, self.sign(timestamp, body.as_bytes()))
                .body(body.clone());
            if let Some(last) = attempts.last() {
                let reason = match (last.status, last.error.as_deref()) {
                    (Some(_), _) => "http_error",
                    (None, Some("timeout")) => "http_timeout",
                    _ => "connection_failed",
                };
                request = request
                    .header("X-Slack-Retry-Num", retry_num.to_string())
                    .header("X-Slack-Retry-Reason", reason);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    attempts.push(Attempt {
                        retry_num,
                        status: Some(status),
                        error: None,
                    });
                    if (200..300).contains(&status) {
                        response_body = Some(text);
                        break;
                    }
                }
                Err(error) => attempts.push(Attempt {
                    retry_num,
                    status: None,
                    error: Some(if error.is_timeout() {
                        "timeout".into()
                    } else {
                        "connection_failed".into()
                    }),
                }),
            }
        }
        let delivery = EventDelivery {
            body,
            attempts,
            response_body,
        };
        self.state.deliveries.push(delivery.clone());
        delivery
    }

    /// Posts raw bytes with the given signature headers (no retries), for
    /// tests of refusals. Returns the status.
    pub async fn post_raw(
        &self,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
        timestamp: Option<i64>,
        signature: Option<&str>,
    ) -> Option<u16> {
        let mut request = self
            .state
            .http
            .post(url)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(timestamp) = timestamp {
            request = request.header(TIMESTAMP_HEADER, timestamp.to_string());
        }
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(action_id: &str) -> Value {
        json!({"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": action_id})
    }

    #[test]
    fn buttons_are_found_in_actions_and_section_accessories() {
        let blocks = json!([
            {"type": "section", "block_id": "s1", "text": {"type": "mrkdwn", "text": "x"},
             "accessory": button("acc")},
            {"type": "actions", "elements": [button("a0"), button("a1")]},
            {"type": "context", "elements": [button("ctx")]},
        ]);
        let (block_id, found) = find_button(&blocks, "acc").expect("accessory button");
        assert_eq!((block_id, &found["action_id"]), (Some("s1"), &json!("acc")));
        let (block_id, found) = find_button(&blocks, "a1").expect("actions button");
        assert_eq!((block_id, &found["action_id"]), (None, &json!("a1")));
        // Only interactive containers count; context elements are not taps.
        assert!(find_button(&blocks, "ctx").is_none());
        assert!(find_button(&blocks, "nope").is_none());
        assert!(find_button(&json!({"not": "an array"}), "a0").is_none());
    }
}
