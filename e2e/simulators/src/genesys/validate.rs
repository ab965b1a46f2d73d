//! Pure validation of request bodies against the Open Messaging schemas.
//! Each failure names the offending field, like the real API does.

use serde_json::{Map, Value};

use super::error_body::ErrorBody;

pub(crate) const ID_TYPES: [&str; 3] = ["Email", "Phone", "Opaque"];
pub(crate) const MEDIA_TYPES: [&str; 5] = ["Image", "Video", "Audio", "File", "Link"];
pub(crate) const RECEIPT_STATUSES: [&str; 2] = ["Delivered", "Failed"];
pub(crate) const BUTTON_RESPONSE_TYPES: [&str; 3] = ["Button", "QuickReply", "DatePicker"];
pub(crate) const REASON_CODES: [&str; 13] = [
    "MessageExpired",
    "RateLimited",
    "MessageNotAllowed",
    "GeneralError",
    "UnsupportedMessage",
    "UnknownMessage",
    "InvalidMessageStructure",
    "InvalidDestination",
    "ServerError",
    "MediaTypeNotAllowed",
    "InvalidMediaContentLength",
    "RecipientOptedOut",
    "DataFiltered",
];
/// The secret token must be longer than this many characters.
pub(crate) const MIN_TOKEN_EXCLUSIVE: usize = 15;

type Checked<T> = Result<T, ErrorBody>;

fn missing(field: &str) -> ErrorBody {
    let mut body = ErrorBody::bad_request(format!("Missing required property '{field}'"));
    body.details
        .push(serde_json::json!({"fieldName": field, "errorCode": "required"}));
    body
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ErrorBody {
    let mut body = ErrorBody::bad_request(format!("Invalid value for '{field}': {why}"));
    body.details
        .push(serde_json::json!({"fieldName": field, "errorCode": "invalid.value"}));
    body
}

/// Parses a JSON request body into an object.
pub(crate) fn object(raw: &[u8]) -> Checked<Map<String, Value>> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ErrorBody::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(error) => Err(ErrorBody::bad_request(format!(
            "The request could not be understood by the server due to malformed syntax: {error}"
        ))),
    }
}

fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, key| current.get(key))
        .filter(|found| !found.is_null())
}

fn required_str<'a>(root: &'a Value, path: &str) -> Checked<&'a str> {
    match get(root, path) {
        None => Err(missing(path)),
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(invalid(path, "must not be empty")),
        Some(_) => Err(invalid(path, "must be a string")),
    }
}

fn optional_str<'a>(root: &'a Value, path: &str) -> Checked<Option<&'a str>> {
    match get(root, path) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(path, "must be a string")),
    }
}

fn one_of(path: &str, value: &str, allowed: &[&str], case_insensitive: bool) -> Checked<()> {
    let found = allowed.iter().any(|candidate| {
        if case_insensitive {
            candidate.eq_ignore_ascii_case(value)
        } else {
            *candidate == value
        }
    });
    if found {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("'{value}' is not one of {}", allowed.join(", ")),
        ))
    }
}

/// ISO-8601 as real clients send it: `Z` or an offset, any number of
/// fractional digits or none, and Python's naive `isoformat()` output.
pub(crate) fn is_iso8601(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok()
        || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

fn required_time(root: &Value, path: &str) -> Checked<()> {
    let text = required_str(root, path)?;
    if is_iso8601(text) {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("'{text}' is not an ISO-8601 date-time"),
        ))
    }
}

fn string_map(root: &Value, path: &str) -> Checked<()> {
    match get(root, path) {
        None => Ok(()),
        Some(Value::Object(map)) => match map.iter().find(|(_, value)| !value.is_string()) {
            None => Ok(()),
            Some((key, _)) => Err(invalid(
                &format!("{path}.{key}"),
                "metadata values must be strings",
            )),
        },
        Some(_) => Err(invalid(path, "must be an object of string values")),
    }
}

fn recipient(root: &Value, side: &str) -> Checked<()> {
    required_str(root, &format!("channel.{side}.id"))?;
    let id_type_path = format!("channel.{side}.idType");
    let id_type = required_str(root, &id_type_path)?;
    one_of(&id_type_path, id_type, &ID_TYPES, true)
}

/// `OpenInboundNormalizedMessage`.
pub(crate) fn inbound_message(body: &Value) -> Checked<()> {
    recipient(body, "from")?;
    required_time(body, "channel.time")?;
    optional_str(body, "channel.messageId")?;
    string_map(body, "metadata")?;
    string_map(body, "channel.metadata.customAttributes")?;
    let text = optional_str(body, "text")?;
    let content = match get(body, "content") {
        None => None,
        Some(Value::Array(items)) => Some(items),
        Some(_) => return Err(invalid("content", "must be an array")),
    };
    let has_text = text.is_some_and(|text| !text.is_empty());
    let has_content = content.is_some_and(|items| !items.is_empty());
    if !has_text && !has_content {
        return Err(ErrorBody::bad_request(
            "should have required property 'content', should have required property '.text', should match some schema in anyOf",
        ));
    }
    for (index, item) in content.into_iter().flatten().enumerate() {
        inbound_content(item, index)?;
    }
    Ok(())
}

fn inbound_content(item: &Value, index: usize) -> Checked<()> {
    let prefix = format!("content[{index}]");
    let kind = optional_str(item, "contentType")
        .map_err(|_| invalid(&format!("{prefix}.contentType"), "must be a string"))?;
    if let Some(kind) = kind.filter(|kind| *kind != "Attachment") {
        return Err(invalid(
            &format!("{prefix}.contentType"),
            format!("'{kind}' is not supported inbound; use Attachment"),
        ));
    }
    let Some(attachment) = get(item, "attachment") else {
        return Err(missing(&format!("{prefix}.attachment")));
    };
    let field = |name: &str| format!("{prefix}.attachment.{name}");
    let media_type =
        required_str(attachment, "mediaType").map_err(|_| missing(&field("mediaType")))?;
    one_of(&field("mediaType"), media_type, &MEDIA_TYPES, false)?;
    required_str(attachment, "url").map_err(|_| missing(&field("url")))?;
    required_str(attachment, "mime").map_err(|_| missing(&field("mime")))?;
    Ok(())
}

/// `OpenInboundNormalizedEvent`.
pub(crate) fn inbound_event(body: &Value) -> Checked<()> {
    recipient(body, "from")?;
    required_time(body, "channel.time")?;
    let Some(Value::Array(events)) = get(body, "events") else {
        return Err(missing("events"));
    };
    if events.is_empty() {
        return Err(invalid("events", "must not be empty"));
    }
    for (index, event) in events.iter().enumerate() {
        let path = format!("events[{index}].eventType");
        let kind = required_str(event, "eventType").map_err(|_| missing(&path))?;
        one_of(&path, kind, &["Typing"], false)?;
        if let Some(typing_type) = optional_str(event, "typing.type")? {
            one_of(
                &format!("events[{index}].typing.type"),
                typing_type,
                &["On"],
                false,
            )?;
        }
    }
    Ok(())
}

/// `OpenInboundNormalizedReceipt`; returns the receipt's `id`.
pub(crate) fn inbound_receipt(body: &Value) -> Checked<String> {
    let id = required_str(body, "id")?.to_owned();
    required_str(body, "channel.to.id")?;
    required_time(body, "channel.time")?;
    let status = required_str(body, "status")?;
    one_of("status", status, &RECEIPT_STATUSES, false)?;
    match get(body, "reasons") {
        None => {}
        Some(Value::Array(reasons)) => {
            for (index, reason) in reasons.iter().enumerate() {
                let path = format!("reasons[{index}].code");
                if let Some(code) =
                    optional_str(reason, "code").map_err(|_| invalid(&path, "must be a string"))?
                {
                    one_of(&path, code, &REASON_CODES, false)?;
                }
            }
        }
        Some(_) => return Err(invalid("reasons", "must be an array")),
    }
    Ok(id)
}

/// `OpenInboundStructuredResponseMessage`.
pub(crate) fn structured_response(body: &Value) -> Checked<()> {
    recipient(body, "from")?;
    required_time(body, "channel.time")?;
    let kind = required_str(body, "buttonResponse.type")?;
    one_of("buttonResponse.type", kind, &BUTTON_RESPONSE_TYPES, false)?;
    required_str(body, "buttonResponse.text")?;
    required_str(body, "buttonResponse.payload")?;
    Ok(())
}

/// `OpenIntegrationRequest` (create) or `OpenIntegrationUpdateRequest`.
pub(crate) fn integration_request(body: &Value, create: bool) -> Checked<()> {
    required_str(body, "name")?;
    let url_field = "outboundNotificationWebhookUrl";
    let token_field = "outboundNotificationWebhookSignatureSecretToken";
    let url = if create {
        Some(required_str(body, url_field)?)
    } else {
        optional_str(body, url_field)?
    };
    if let Some(url) = url {
        match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => return Err(invalid(url_field, "must be an absolute http(s) URL")),
        }
    }
    let token = if create {
        Some(required_str(body, token_field)?)
    } else {
        optional_str(body, token_field)?
    };
    if token.is_some_and(|token| token.chars().count() <= MIN_TOKEN_EXCLUSIVE) {
        return Err(invalid(token_field, "must be longer than 15 characters"));
    }
    string_map(body, "webhookHeaders")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(overrides: Value) -> Value {
        let mut base = json!({
            "channel": {"from": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22.733Z"},
            "text": "hi"
        });
        merge(&mut base, overrides);
        base
    }

    fn merge(base: &mut Value, overrides: Value) {
        if let (Value::Object(base), Value::Object(over)) = (base, overrides) {
            for (key, value) in over {
                match (base.get_mut(&key), value) {
                    (Some(existing @ Value::Object(_)), value @ Value::Object(_)) => {
                        merge(existing, value)
                    }
                    (_, value) => {
                        base.insert(key, value);
                    }
                }
            }
        }
    }

    fn field_of(error: ErrorBody) -> String {
        error.details[0]["fieldName"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn accepts_minimal_message_and_lenient_times() {
        for time in [
            "2024-05-02T09:31:22Z",
            "2024-05-02T09:31:22.733Z",
            "2024-05-02T09:31:22.733123+00:00",
            "2024-05-02T09:31:22.733123",
            "2024-05-02T18:31:22+09:00",
        ] {
            assert!(
                inbound_message(&message(json!({"channel": {"time": time}}))).is_ok(),
                "{time}"
            );
        }
    }

    #[test]
    fn rejects_bad_time_naming_field() {
        let error =
            inbound_message(&message(json!({"channel": {"time": "yesterday"}}))).unwrap_err();
        assert_eq!(field_of(error), "channel.time");
    }

    #[test]
    fn id_type_is_case_insensitive_but_enumerated() {
        assert!(
            inbound_message(&message(json!({"channel": {"from": {"idType": "email"}}}))).is_ok()
        );
        let error = inbound_message(&message(
            json!({"channel": {"from": {"idType": "Twitter"}}}),
        ))
        .unwrap_err();
        assert_eq!(field_of(error), "channel.from.idType");
    }

    #[test]
    fn requires_text_or_content() {
        let body = json!({"channel": {"from": {"id": "U1", "idType": "Opaque"}, "time": "2024-05-02T09:31:22Z"}});
        let error = inbound_message(&body).unwrap_err();
        assert!(error.message.contains("content"), "{}", error.message);
    }

    #[test]
    fn metadata_must_be_flat_strings() {
        let error = inbound_message(&message(
            json!({"metadata": {"customAttributes": {"a": "b"}}}),
        ))
        .unwrap_err();
        assert_eq!(error.code, "bad.request");
        assert!(inbound_message(&message(json!({"metadata": {"rating": "5"}}))).is_ok());
    }

    #[test]
    fn attachment_requires_media_type_url_mime() {
        let with = |attachment: Value| {
            message(json!({"text": null, "content": [{"attachment": attachment}]}))
        };
        assert!(
            inbound_message(&with(
                json!({"mediaType": "Image", "url": "https://x/a.jpg", "mime": "image/jpeg"})
            ))
            .is_ok()
        );
        let error = inbound_message(&with(
            json!({"url": "https://x/a.jpg", "mime": "image/jpeg"}),
        ))
        .unwrap_err();
        assert_eq!(field_of(error), "content[0].attachment.mediaType");
        let error = inbound_message(&with(
            json!({"mediaType": "Image", "url": "https://x/a.jpg"}),
        ))
        .unwrap_err();
        assert_eq!(field_of(error), "content[0].attachment.mime");
    }

    #[test]
    fn receipt_status_and_reason_codes_are_enumerated() {
        let receipt = |status: &str, code: &str| {
            json!({"id": "m1", "channel": {"to": {"id": "U1"}, "time": "2024-05-02T09:31:22Z"},
                   "status": status, "reasons": [{"code": code}]})
        };
        assert_eq!(
            inbound_receipt(&receipt("Failed", "GeneralError"))
                .ok()
                .as_deref(),
            Some("m1")
        );
        assert_eq!(
            field_of(inbound_receipt(&receipt("Read", "GeneralError")).unwrap_err()),
            "status"
        );
        assert_eq!(
            field_of(inbound_receipt(&receipt("Failed", "Blocked")).unwrap_err()),
            "reasons[0].code"
        );
    }

    #[test]
    fn integration_token_must_exceed_fifteen_chars() {
        let body = |token: &str| {
            json!({"name": "n", "outboundNotificationWebhookUrl": "https://h/x",
                                          "outboundNotificationWebhookSignatureSecretToken": token})
        };
        assert!(integration_request(&body("0123456789abcdef"), true).is_ok());
        let error = integration_request(&body("0123456789abcde"), true).unwrap_err();
        assert_eq!(
            field_of(error),
            "outboundNotificationWebhookSignatureSecretToken"
        );
        assert!(integration_request(&json!({"name": "only"}), false).is_ok());
        assert_eq!(
            field_of(integration_request(&json!({"name": "only"}), true).unwrap_err()),
            "outboundNotificationWebhookUrl"
        );
    }
}
