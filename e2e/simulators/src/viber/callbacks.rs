//! Guest side: callbacks as Viber posts them (`message`, `subscribed`,
//! `conversation_started`, `unsubscribed`, `webhook`), signed with
//! `X-Viber-Content-Signature` = hex(HMAC-SHA256(auth token, body)).

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Viber-Content-Signature";

/// hex(HMAC-SHA256(auth token, body)), lower case, as Viber signs.
pub fn sign(auth_token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A Viber user as the simulator knows it (callbacks and
/// `get_user_details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViberUser {
    pub id: String,
    pub name: String,
    pub avatar: Option<String>,
    pub country: String,
    pub language: String,
    pub api_version: u32,
    pub primary_device_os: String,
    pub device_type: String,
}

impl ViberUser {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            avatar: None,
            country: "UK".into(),
            language: "en".into(),
            api_version: 10,
            primary_device_os: "Android 14".into(),
            device_type: "Pixel 8".into(),
        }
    }

    pub fn with_country(mut self, country: &str) -> Self {
        self.country = country.into();
        self
    }

    pub fn with_language(mut self, language: &str) -> Self {
        self.language = language.into();
        self
    }

    pub fn with_device(mut self, os: &str, device_type: &str) -> Self {
        self.primary_device_os = os.into();
        self.device_type = device_type.into();
        self
    }

    pub fn with_avatar(mut self, avatar: &str) -> Self {
        self.avatar = Some(avatar.into());
        self
    }

    /// `sender` of `message`, `user` of `subscribed`.
    pub fn callback_json(&self) -> Value {
        let mut user = json!({
            "id": self.id, "name": self.name, "country": self.country,
            "language": self.language, "api_version": self.api_version,
        });
        if let Some(avatar) = &self.avatar {
            user["avatar"] = json!(avatar);
        }
        user
    }

    /// `user` of `get_user_details`.
    pub fn details_json(&self) -> Value {
        let mut user = self.callback_json();
        user["primary_device_os"] = json!(self.primary_device_os);
        user["viber_version"] = json!("21.5.0.0");
        user["device_type"] = json!(self.device_type);
        user["mcc"] = json!(234);
        user["mnc"] = json!(10);
        user
    }
}

/// What a guest does; `message_token` and `timestamp` are filled in when
/// sent unless fixed (a fixed token replays a callback).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSpec {
    pub event: String,
    pub user: ViberUser,
    pub message: Option<Value>,
    pub message_token: Option<u64>,
    /// For `message`: echo the `tracking_data` of the bot's last message to
    /// this user, as Viber does (default true).
    pub echo_tracking_data: bool,
}

impl CallbackSpec {
    fn message(user: &ViberUser, message: Value) -> Self {
        Self {
            event: "message".into(),
            user: user.clone(),
            message: Some(message),
            message_token: None,
            echo_tracking_data: true,
        }
    }

    pub fn text(user: &ViberUser, text: &str) -> Self {
        Self::message(user, json!({"type": "text", "text": text}))
    }

    /// A tap on a `reply` button: Viber sends its `ActionBody` as text.
    pub fn tap(user: &ViberUser, action_body: &str) -> Self {
        Self::text(user, action_body)
    }

    pub fn picture(user: &ViberUser, media_url: &str, text: Option<&str>, size: u64) -> Self {
        let mut message = json!({"type": "picture", "media": media_url, "size": size,
            "thumbnail": media_url});
        if let Some(text) = text {
            message["text"] = json!(text);
        }
        Self::message(user, message)
    }

    pub fn file(user: &ViberUser, media_url: &str, file_name: &str, size: u64) -> Self {
        Self::message(
            user,
            json!({"type": "file", "media": media_url, "file_name": file_name, "size": size}),
        )
    }

    pub fn sticker(user: &ViberUser, sticker_id: i64, media_url: &str) -> Self {
        Self::message(
            user,
            json!({"type": "sticker", "sticker_id": sticker_id, "media": media_url}),
        )
    }

    pub fn location(user: &ViberUser, lat: f64, lon: f64) -> Self {
        Self::message(
            user,
            json!({"type": "location", "location": {"lat": lat, "lon": lon}}),
        )
    }

    pub fn subscribed(user: &ViberUser) -> Self {
        Self {
            event: "subscribed".into(),
            user: user.clone(),
            message: None,
            message_token: None,
            echo_tracking_data: false,
        }
    }

    pub fn conversation_started(user: &ViberUser) -> Self {
        Self {
            event: "conversation_started".into(),
            ..Self::subscribed(user)
        }
    }

    pub fn unsubscribed(user: &ViberUser) -> Self {
        Self {
            event: "unsubscribed".into(),
            ..Self::subscribed(user)
        }
    }

    pub fn with_token(mut self, message_token: u64) -> Self {
        self.message_token = Some(message_token);
        self
    }

    pub fn without_tracking_data(mut self) -> Self {
        self.echo_tracking_data = false;
        self
    }

    /// The JSON Viber posts.
    pub fn assemble(&self, token: u64, timestamp_ms: i64, tracking_data: Option<&str>) -> Value {
        let mut callback = json!({
            "event": self.event, "timestamp": timestamp_ms, "message_token": token,
        });
        match self.event.as_str() {
            "message" => {
                callback["sender"] = self.user.callback_json();
                let mut message = self.message.clone().unwrap_or_else(|| json!({}));
                if self.echo_tracking_data
                    && let Some(data) = tracking_data
                {
                    message["tracking_data"] = json!(data);
                }
                callback["message"] = message;
                callback["silent"] = json!(false);
            }
            "subscribed" => callback["user"] = self.user.callback_json(),
            "conversation_started" => {
                callback["type"] = json!("open");
                callback["context"] = json!("");
                callback["user"] = self.user.callback_json();
                callback["subscribed"] = json!(false);
            }
            "unsubscribed" => callback["user_id"] = json!(self.user.id),
            _ => {}
        }
        callback
    }
}
