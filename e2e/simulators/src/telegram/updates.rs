//! Builders for the `Update`s a guest produces. The simulator fills in
//! `update_id` (increasing per bot unless given), `message_id` (per chat)
//! and `date` when it sends them.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The Telegram user on the guest side (a private chat has the same id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guest {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

impl Guest {
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
            language_code: None,
        }
    }
    pub fn with_last_name(mut self, last_name: impl Into<String>) -> Self {
        self.last_name = Some(last_name.into());
        self
    }
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    pub fn with_language(mut self, language_code: impl Into<String>) -> Self {
        self.language_code = Some(language_code.into());
        self
    }

    /// The `User` object.
    pub fn user_json(&self) -> Value {
        let mut user = json!({"id": self.id, "is_bot": false, "first_name": self.first_name});
        put(&mut user, "last_name", self.last_name.as_deref());
        put(&mut user, "username", self.username.as_deref());
        put(&mut user, "language_code", self.language_code.as_deref());
        user
    }

    /// The private `Chat` object.
    pub fn chat_json(&self) -> Value {
        let mut chat = json!({"id": self.id, "type": "private", "first_name": self.first_name});
        put(&mut chat, "last_name", self.last_name.as_deref());
        put(&mut chat, "username", self.username.as_deref());
        chat
    }
}

fn put(target: &mut Value, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        target[key] = json!(value);
    }
}

/// A file the simulator holds (from `upload_file` or a bot's send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedFile {
    pub file_id: String,
    pub file_unique_id: String,
    pub file_size: u64,
    pub mime_type: String,
}

/// One entry of a `photo` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoSize {
    pub file_id: String,
    pub file_unique_id: String,
    pub width: u32,
    pub height: u32,
    pub file_size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Fields of a `message` besides message_id/from/chat/date.
    Message(Map<String, Value>),
    CallbackQuery {
        data: String,
        message_id: Option<i64>,
    },
}

/// An update to send as a guest; see the constructor functions.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSpec {
    pub(crate) update_id: Option<i64>,
    pub(crate) message_id: Option<i64>,
    pub(crate) from: Option<Guest>,
    pub(crate) body: Option<Body>,
    /// A complete Update JSON, sent as given (update_id added if missing).
    pub(crate) raw: Option<Value>,
}

impl UpdateSpec {
    fn message(from: &Guest, fields: Value) -> Self {
        let fields = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            update_id: None,
            message_id: None,
            from: Some(from.clone()),
            body: Some(Body::Message(fields)),
            raw: None,
        }
    }

    /// Sends the same `update_id` again (to test deduplication).
    pub fn with_update_id(mut self, update_id: i64) -> Self {
        self.update_id = Some(update_id);
        self
    }

    pub fn with_message_id(mut self, message_id: i64) -> Self {
        self.message_id = Some(message_id);
        self
    }

    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        if let Some(Body::Message(fields)) = &mut self.body {
            fields.insert("caption".into(), json!(caption.into()));
        }
        self
    }

    /// A complete Update JSON.
    pub fn raw(update: Value) -> Self {
        let update_id = update["update_id"].as_i64();
        Self {
            update_id,
            message_id: None,
            from: None,
            body: None,
            raw: Some(update),
        }
    }

    pub fn text(from: &Guest, text: impl Into<String>) -> Self {
        Self::message(from, json!({"text": text.into()}))
    }

    /// `sizes` smallest first, as Telegram sends them (largest last).
    pub fn photo(from: &Guest, sizes: &[PhotoSize]) -> Self {
        Self::message(from, json!({"photo": sizes}))
    }

    pub fn document(from: &Guest, file: &UploadedFile, file_name: impl Into<String>) -> Self {
        Self::message(
            from,
            json!({"document": {"file_id": file.file_id, "file_unique_id": file.file_unique_id,
                                 "file_name": file_name.into(), "mime_type": file.mime_type, "file_size": file.file_size}}),
        )
    }

    pub fn video(from: &Guest, file: &UploadedFile, duration: u32) -> Self {
        Self::message(
            from,
            json!({"video": {"file_id": file.file_id, "file_unique_id": file.file_unique_id, "width": 1280, "height": 720,
                              "duration": duration, "mime_type": file.mime_type, "file_size": file.file_size}}),
        )
    }

    pub fn voice(from: &Guest, file: &UploadedFile, duration: u32) -> Self {
        Self::message(
            from,
            json!({"voice": {"file_id": file.file_id, "file_unique_id": file.file_unique_id, "duration": duration,
                              "mime_type": file.mime_type, "file_size": file.file_size}}),
        )
    }

    pub fn audio(from: &Guest, file: &UploadedFile, duration: u32, title: Option<&str>) -> Self {
        let mut audio = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "duration": duration,
                               "mime_type": file.mime_type, "file_size": file.file_size});
        put(&mut audio, "title", title);
        Self::message(from, json!({"audio": audio}))
    }

    pub fn location(from: &Guest, latitude: f64, longitude: f64) -> Self {
        Self::message(
            from,
            json!({"location": {"latitude": latitude, "longitude": longitude}}),
        )
    }

    pub fn sticker(from: &Guest, file: &UploadedFile, emoji: &str, set_name: Option<&str>) -> Self {
        let mut sticker = json!({"file_id": file.file_id, "file_unique_id": file.file_unique_id, "type": "regular",
                                 "width": 512, "height": 512, "is_animated": false, "is_video": false,
                                 "emoji": emoji, "file_size": file.file_size});
        put(&mut sticker, "set_name", set_name);
        Self::message(from, json!({"sticker": sticker}))
    }

    pub fn contact(
        from: &Guest,
        phone_number: &str,
        first_name: &str,
        user_id: Option<i64>,
    ) -> Self {
        let mut contact = json!({"phone_number": phone_number, "first_name": first_name});
        if let Some(user_id) = user_id {
            contact["user_id"] = json!(user_id);
        }
        Self::message(from, json!({"contact": contact}))
    }

    /// A tap on an inline button; `message_id` is the bot message that
    /// carried the keyboard (its recorded JSON is attached when known).
    pub fn callback_query(from: &Guest, data: impl Into<String>, message_id: Option<i64>) -> Self {
        Self {
            update_id: None,
            message_id: None,
            from: Some(from.clone()),
            body: Some(Body::CallbackQuery {
                data: data.into(),
                message_id,
            }),
            raw: None,
        }
    }

    /// The chat this update belongs to, if it names one.
    pub(crate) fn chat_id(&self) -> Option<i64> {
        if let Some(from) = &self.from {
            return Some(from.id);
        }
        let raw = self.raw.as_ref()?;
        raw["message"]["chat"]["id"]
            .as_i64()
            .or_else(|| raw["callback_query"]["message"]["chat"]["id"].as_i64())
    }
}

impl From<Value> for UpdateSpec {
    fn from(update: Value) -> Self {
        Self::raw(update)
    }
}

/// Assembles the final Update JSON (pure: ids, date and the callback's
/// message are given).
pub(crate) fn assemble(
    spec: &UpdateSpec,
    update_id: i64,
    message_id: i64,
    date: i64,
    callback: Option<(String, Option<Value>)>,
) -> Value {
    if let Some(raw) = &spec.raw {
        let mut update = raw.clone();
        update["update_id"] = json!(update_id);
        return update;
    }
    let from = spec
        .from
        .as_ref()
        .map(Guest::user_json)
        .unwrap_or(Value::Null);
    let chat = spec
        .from
        .as_ref()
        .map(Guest::chat_json)
        .unwrap_or(Value::Null);
    match &spec.body {
        Some(Body::Message(fields)) => {
            let mut message =
                json!({"message_id": message_id, "from": from, "chat": chat, "date": date});
            for (key, value) in fields {
                message[key] = value.clone();
            }
            json!({"update_id": update_id, "message": message})
        }
        Some(Body::CallbackQuery { data, .. }) => {
            let (id, message) = callback.unwrap_or_default();
            let mut query = json!({"id": id, "from": from, "chat_instance": format!("{}", spec.chat_id().unwrap_or_default()), "data": data});
            if let Some(message) = message {
                query["message"] = message;
            }
            json!({"update_id": update_id, "callback_query": query})
        }
        None => json!({"update_id": update_id}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_update_has_private_chat_and_ids() {
        let guest = Guest::new(42, "Ann")
            .with_username("ann")
            .with_language("ja");
        let update = assemble(
            &UpdateSpec::text(&guest, "hello"),
            7,
            3,
            1_700_000_000,
            None,
        );
        assert_eq!(update["update_id"], 7);
        assert_eq!(update["message"]["message_id"], 3);
        assert_eq!(
            update["message"]["chat"],
            json!({"id": 42, "type": "private", "first_name": "Ann", "username": "ann"})
        );
        assert_eq!(update["message"]["from"]["language_code"], "ja");
        assert_eq!(update["message"]["text"], "hello");
    }

    #[test]
    fn photo_keeps_sizes_in_order_with_caption() {
        let size = |id: &str, w: u32| PhotoSize {
            file_id: id.into(),
            file_unique_id: id.into(),
            width: w,
            height: w,
            file_size: u64::from(w),
        };
        let spec = UpdateSpec::photo(&Guest::new(1, "A"), &[size("s", 90), size("l", 1280)])
            .with_caption("look");
        let update = assemble(&spec, 1, 1, 0, None);
        assert_eq!(update["message"]["photo"][1]["file_id"], "l");
        assert_eq!(update["message"]["caption"], "look");
    }

    #[test]
    fn callback_query_carries_data_and_id() {
        let spec = UpdateSpec::callback_query(&Guest::new(5, "B"), "yes", Some(9));
        let update = assemble(
            &spec,
            2,
            0,
            0,
            Some(("777".into(), Some(json!({"message_id": 9})))),
        );
        assert_eq!(update["callback_query"]["id"], "777");
        assert_eq!(update["callback_query"]["data"], "yes");
        assert_eq!(update["callback_query"]["message"]["message_id"], 9);
    }
}
