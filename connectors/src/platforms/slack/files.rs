//! File bytes in both directions, bounded: agent attachments downloaded
//! for upload to Slack, and guests' private files (`url_private`) fetched
//! with the bot token and re-served under a signed media URL.
//!
//! One cap for both, `UM_SLACK_MAX_FILE_BYTES` (default
//! [`DEFAULT_MAX_FILE_BYTES`]): an upload is held in memory, because
//! `files.getUploadURLExternal` wants the length before the bytes.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::machinery::envelope::ReasonCode;
use crate::machinery::http_client::{classify_response, transport_error};
use crate::platform::DeliveryError;

/// Largest file moved either way unless `UM_SLACK_MAX_FILE_BYTES` says.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// Environment variable overriding [`DEFAULT_MAX_FILE_BYTES`].
pub const MAX_FILE_BYTES_ENV: &str = "UM_SLACK_MAX_FILE_BYTES";
/// Longest an attachment download may take (the shared client's 30 s is
/// short for tens of megabytes).
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The cap in force (read once from the environment).
pub fn max_file_bytes() -> u64 {
    static CAP: OnceLock<u64> = OnceLock::new();
    *CAP.get_or_init(|| {
        let value = std::env::var(MAX_FILE_BYTES_ENV).ok();
        parse_cap(value.as_deref()).unwrap_or_else(|bad| {
            tracing::warn!(
                variable = MAX_FILE_BYTES_ENV,
                value = bad,
                default = DEFAULT_MAX_FILE_BYTES,
                "not a positive number of bytes; the default cap applies"
            );
            DEFAULT_MAX_FILE_BYTES
        })
    })
}

/// `None`/empty: the default; a positive integer: that; else `Err(value)`.
fn parse_cap(value: Option<&str>) -> Result<u64, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_MAX_FILE_BYTES),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|cap| *cap > 0)
            .ok_or_else(|| text.to_owned()),
    }
}

/// Why file bytes are not moved. `what` names the file, never its URL
/// (attachment and Slack URLs can carry credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileRefusal {
    #[error(
        "{what} is {size} bytes or more, over the Slack connector's limit of {limit} bytes ({MAX_FILE_BYTES_ENV})"
    )]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error(
        "Slack answered the download of {what} with an HTML page (its sign-in page), not the file: \
         the workspace's install lacks the files:read scope, the app was removed, or the file was deleted"
    )]
    SignInPage { what: String },
}

impl FileRefusal {
    pub fn into_delivery_error(self) -> DeliveryError {
        let reason = match self {
            FileRefusal::TooLarge { .. } => ReasonCode::InvalidMediaContentLength,
            FileRefusal::SignInPage { .. } => ReasonCode::GeneralError,
        };
        DeliveryError::permanent(reason, self.to_string())
    }
}

/// A declared or announced size against the cap.
pub fn check_size(what: &str, size: Option<u64>, limit: u64) -> Result<(), FileRefusal> {
    match size {
        Some(size) if size > limit => Err(FileRefusal::TooLarge {
            what: what.to_owned(),
            size,
            limit,
        }),
        _ => Ok(()),
    }
}

fn media_type_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A 2xx answer to a `url_private` download. Slack answers a token that may
/// not read the file with its sign-in page, HTML with HTTP 200 (after a
/// redirect): that must never be served as the guest's file. A file the
/// event itself declared as HTML is the exception.
pub fn check_private_file(
    what: &str,
    content_type: Option<&str>,
    declared_mime: Option<&str>,
    content_length: Option<u64>,
    limit: u64,
) -> Result<(), FileRefusal> {
    let served = content_type.map(media_type_of).unwrap_or_default();
    let declared = declared_mime.map(media_type_of).unwrap_or_default();
    if served == "text/html" && declared != "text/html" {
        return Err(FileRefusal::SignInPage {
            what: what.to_owned(),
        });
    }
    check_size(what, content_length, limit)
}

/// Ends a body stream with an error once it passed `limit` bytes (a body
/// without `Content-Length` is not trusted to be small).
pub fn capped<E>(
    stream: BoxStream<'static, Result<Bytes, E>>,
    what: String,
    limit: u64,
) -> BoxStream<'static, Result<Bytes, std::io::Error>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut seen: u64 = 0;
    stream
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            seen = seen.saturating_add(chunk.len() as u64);
            if seen > limit {
                return Err(std::io::Error::other(FileRefusal::TooLarge {
                    what: what.clone(),
                    size: seen,
                    limit,
                }));
            }
            Ok(chunk)
        })
        .boxed()
}

/// How a failed attachment download ends the delivery: throttling and
/// server errors are retried, anything else will not get better.
fn download_failure(
    status: reqwest::StatusCode,
    headers: &http::HeaderMap,
    what: &str,
) -> DeliveryError {
    let step = format!("download of {what}");
    let detail = format!("{step}: HTTP {}", status.as_u16());
    match status {
        s if s == reqwest::StatusCode::TOO_MANY_REQUESTS
            || s == reqwest::StatusCode::REQUEST_TIMEOUT
            || s.is_server_error() =>
        {
            classify_response(status, headers, &step)
                .err()
                .unwrap_or_else(|| DeliveryError::retry(detail))
        }
        reqwest::StatusCode::PAYLOAD_TOO_LARGE => {
            DeliveryError::permanent(ReasonCode::InvalidMediaContentLength, detail)
        }
        _ => DeliveryError::permanent(ReasonCode::GeneralError, detail),
    }
}

/// Downloads an agent's attachment, at most `limit` bytes, within
/// [`DOWNLOAD_TIMEOUT`].
pub async fn download_attachment(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    limit: u64,
) -> Result<Bytes, DeliveryError> {
    let step = format!("download of {what}");
    let response = http
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|error| transport_error(&step, &error))?;
    if !response.status().is_success() {
        return Err(download_failure(
            response.status(),
            response.headers(),
            what,
        ));
    }
    check_size(what, response.content_length(), limit).map_err(FileRefusal::into_delivery_error)?;
    let mut body = response.bytes_stream();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| transport_error(&step, &error))?;
        check_size(what, Some((bytes.len() + chunk.len()) as u64), limit)
            .map_err(FileRefusal::into_delivery_error)?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_from_the_environment_value() {
        assert_eq!(parse_cap(None), Ok(DEFAULT_MAX_FILE_BYTES));
        assert_eq!(parse_cap(Some(" ")), Ok(DEFAULT_MAX_FILE_BYTES));
        assert_eq!(parse_cap(Some("65536")), Ok(65_536));
        assert_eq!(parse_cap(Some("0")), Err("0".to_owned()));
        assert_eq!(parse_cap(Some("50MB")), Err("50MB".to_owned()));
    }

    #[test]
    fn sign_in_page_is_refused_unless_the_file_is_html() {
        let check = |served: Option<&str>, declared: Option<&str>| {
            check_private_file("map.png", served, declared, Some(10), 100)
        };
        assert_eq!(check(Some("image/png"), Some("image/png")), Ok(()));
        let refused = check(Some("text/html; charset=utf-8"), Some("image/png")).unwrap_err();
        assert!(matches!(refused, FileRefusal::SignInPage { .. }));
        assert!(refused.to_string().contains("files:read"), "{refused}");
        assert!(check(Some("TEXT/HTML"), None).is_err());
        // A guest sharing an HTML file gets it.
        assert_eq!(check(Some("text/html"), Some("text/html")), Ok(()));
        assert_eq!(check(None, Some("image/png")), Ok(()));
    }

    #[test]
    fn sizes_over_the_cap_are_refused_with_their_reason() {
        assert_eq!(check_size("a.pdf", Some(100), 100), Ok(()));
        assert_eq!(check_size("a.pdf", None, 100), Ok(()));
        let refused = check_size("a.pdf", Some(101), 100).unwrap_err();
        assert_eq!(
            refused,
            FileRefusal::TooLarge {
                what: "a.pdf".into(),
                size: 101,
                limit: 100
            }
        );
        assert!(
            check_private_file("a.pdf", Some("application/pdf"), None, Some(101), 100).is_err()
        );
        match refused.into_delivery_error() {
            DeliveryError::Permanent { reason, detail } => {
                assert_eq!(reason, ReasonCode::InvalidMediaContentLength);
                assert!(detail.contains(MAX_FILE_BYTES_ENV), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stream_stops_past_the_cap() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"12345")),
            Ok(Bytes::from_static(b"67890")),
            Ok(Bytes::from_static(b"x")),
        ];
        let collected: Vec<Result<Bytes, std::io::Error>> =
            capped(futures::stream::iter(chunks).boxed(), "f".into(), 10)
                .collect()
                .await;
        assert_eq!(collected.len(), 3);
        assert!(collected[0].is_ok() && collected[1].is_ok());
        let error = collected[2].as_ref().unwrap_err();
        assert!(error.to_string().contains("limit of 10 bytes"), "{error}");
    }

    #[test]
    fn download_failures_retry_only_what_can_pass() {
        let headers = http::HeaderMap::new();
        assert!(matches!(
            download_failure(reqwest::StatusCode::SERVICE_UNAVAILABLE, &headers, "a.pdf"),
            DeliveryError::Retry { .. }
        ));
        assert!(matches!(
            download_failure(reqwest::StatusCode::TOO_MANY_REQUESTS, &headers, "a.pdf"),
            DeliveryError::Retry { .. }
        ));
        assert_eq!(
            download_failure(reqwest::StatusCode::NOT_FOUND, &headers, "a.pdf"),
            DeliveryError::permanent(
                ReasonCode::GeneralError,
                "download of a.pdf: HTTP 404".to_owned()
            )
        );
        assert!(matches!(
            download_failure(reqwest::StatusCode::PAYLOAD_TOO_LARGE, &headers, "a.pdf"),
            DeliveryError::Permanent {
                reason: ReasonCode::InvalidMediaContentLength,
                ..
            }
        ));
    }
}
