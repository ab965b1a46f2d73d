//! File bytes in both directions, bounded: agent attachments streamed from
//! their URL into Slack's upload, and guests' private files (`url_private`)
//! fetched with the bot token and re-served under a signed media URL.
//!
//! One cap for both, `UM_SLACK_MAX_FILE_BYTES` (default
//! [`DEFAULT_MAX_FILE_BYTES`]).
//!
//! An agent's attachment is never held whole: 50 MiB in a 64 Mi pod is an
//! OOM kill, a redelivery and a crash loop. Slack's external upload wants
//! the length before the bytes (`files.getUploadURLExternal` with
//! `length`, the bytes POSTed to the `upload_url` it answers,
//! `files.completeUploadExternal`), so [`open_attachment`] takes the
//! length from the source's `Content-Length`, else from the size the
//! agent's message declares ([`upload_length`]), and [`stream_upload`]
//! hands the source's body to the upload chunk by chunk: memory is a few
//! of the HTTP client's buffers, whatever the file's size. The body ends in
//! an error, failing the delivery, as soon as it passes that length or if
//! it ends short of it ([`exactly`]), so the upload never carries other
//! than the announced bytes.
//!
//! A source that announces no length, for a message that declares none, is
//! refused (permanently) rather than spooled: a connector pod has no volume
//! to spool to (its writable layer is the node's disk, and the page cache
//! of what it writes is charged to the pod's memory limit, the very limit
//! this is about), and the storage behind attachment URLs (object stores,
//! pre-signed URLs) announces the length of what it serves.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::client::{MethodError, SlackApi, complete_form};
use super::outbound::FileUpload;
use crate::machinery::envelope::ReasonCode;
use crate::machinery::http_client::{classify_response, transport_error};
use crate::platform::DeliveryError;

/// Largest file moved either way unless `UM_SLACK_MAX_FILE_BYTES` says.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// Environment variable overriding [`DEFAULT_MAX_FILE_BYTES`].
pub const MAX_FILE_BYTES_ENV: &str = "UM_SLACK_MAX_FILE_BYTES";
/// Longest an attachment's download may take, and its upload (which goes
/// at the download's pace): the shared client's 30 s is short for tens of
/// megabytes.
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
    #[error(
        "{what} has no announced length (its download sends no Content-Length and the message \
         declares no size): Slack's upload needs the length first, and the connector does not \
         hold a file whole"
    )]
    LengthUnknown { what: String },
    #[error("{what} sent more than the {length} bytes it announced")]
    LongerThanAnnounced { what: String, length: u64 },
    #[error("{what} ended after {received} of the {length} bytes it announced")]
    ShorterThanAnnounced {
        what: String,
        length: u64,
        received: u64,
    },
}

impl FileRefusal {
    pub fn into_delivery_error(self) -> DeliveryError {
        let reason = match self {
            FileRefusal::TooLarge { .. }
            | FileRefusal::LengthUnknown { .. }
            | FileRefusal::LongerThanAnnounced { .. }
            | FileRefusal::ShorterThanAnnounced { .. } => ReasonCode::InvalidMediaContentLength,
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

/// The length an attachment's upload announces to Slack: the source's
/// `Content-Length` (what its body will be), else the size the agent's
/// message declares; at most `limit`.
pub fn upload_length(
    what: &str,
    content_length: Option<u64>,
    declared: Option<u64>,
    limit: u64,
) -> Result<u64, FileRefusal> {
    let length = content_length
        .or(declared)
        .ok_or_else(|| FileRefusal::LengthUnknown {
            what: what.to_owned(),
        })?;
    check_size(what, Some(length), limit)?;
    Ok(length)
}

/// Why an attachment's body stopped early, kept for the upload that was
/// carrying it: the HTTP client reports a failing request body only as a
/// "body error", which would be retried.
#[derive(Debug, Clone, Default)]
struct StopReason(Arc<Mutex<Option<DeliveryError>>>);

impl StopReason {
    /// Keeps the first reason; the error ending the body stream.
    fn stop(&self, reason: DeliveryError) -> std::io::Error {
        let error = std::io::Error::other(reason.to_string());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        error
    }

    fn take(&self) -> Option<DeliveryError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Where [`exactly`] is in its body.
struct Counted {
    body: BoxStream<'static, Result<Bytes, DeliveryError>>,
    received: u64,
    what: String,
    stop: StopReason,
}

/// `body` chunk by chunk as it comes, ending in an error (its reason kept
/// in `stop`) at the chunk that passes `length` bytes, at the end when it
/// falls short of them, or at the source's own error.
///
/// The chunk that completes `length` is held until the source has said it
/// ends there: the upload's HTTP client stops reading at its
/// `Content-Length`, so a source that goes on would otherwise be uploaded
/// cut at the announced length, as if whole.
fn exactly(
    body: BoxStream<'static, Result<Bytes, DeliveryError>>,
    what: String,
    length: u64,
    stop: StopReason,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let start = Counted {
        // Polled again after `ends` saw its end.
        body: body.fuse().boxed(),
        received: 0,
        what,
        stop,
    };
    futures::stream::unfold(Some(start), move |state| async move {
        let mut state = state?;
        let failed = match state.body.next().await {
            Some(Ok(chunk)) => {
                state.received = state.received.saturating_add(chunk.len() as u64);
                let more = match state.received.cmp(&length) {
                    Ordering::Less => Ok(false),
                    Ordering::Equal => ends(&mut state.body).await.map(|end| !end),
                    Ordering::Greater => Ok(true),
                };
                match more {
                    Ok(false) => return Some((Ok(chunk), Some(state))),
                    Ok(true) => FileRefusal::LongerThanAnnounced {
                        what: state.what,
                        length,
                    }
                    .into_delivery_error(),
                    Err(error) => error,
                }
            }
            Some(Err(error)) => error,
            None if state.received < length => FileRefusal::ShorterThanAnnounced {
                what: state.what,
                length,
                received: state.received,
            }
            .into_delivery_error(),
            None => return None,
        };
        Some((Err(state.stop.stop(failed)), None))
    })
    .boxed()
}

/// Whether `body` has no more bytes: `Ok(true)` at its end, `Ok(false)`
/// at a byte more; its error as it is (empty chunks are skipped).
async fn ends(
    body: &mut BoxStream<'static, Result<Bytes, DeliveryError>>,
) -> Result<bool, DeliveryError> {
    loop {
        match body.next().await {
            None => return Ok(true),
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(Ok(_)) => return Ok(false),
            Some(Err(error)) => return Err(error),
        }
    }
}

/// An agent's attachment on its way: its length, known before its bytes,
/// and its body, still at the source.
pub struct AttachmentSource {
    pub length: u64,
    body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    stop: StopReason,
}

impl std::fmt::Debug for AttachmentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentSource")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// Opens an agent's attachment: the answer's headers read (its length from
/// [`upload_length`]), its body left to [`stream_upload`]. The whole
/// download is within [`DOWNLOAD_TIMEOUT`].
pub async fn open_attachment(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    declared: Option<u64>,
    limit: u64,
) -> Result<AttachmentSource, DeliveryError> {
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
    let length = upload_length(what, response.content_length(), declared, limit)
        .map_err(FileRefusal::into_delivery_error)?;
    let stop = StopReason::default();
    let body = response
        .bytes_stream()
        .map_err(move |error| transport_error(&step, &error))
        .boxed();
    Ok(AttachmentSource {
        length,
        body: exactly(body, what.to_owned(), length, stop.clone()),
        stop,
    })
}

/// Slack's external upload of `source`, its bytes passed on as they come:
/// `files.getUploadURLExternal` with the length, the bytes POSTed to the
/// `upload_url` with that `Content-Length`, `files.completeUploadExternal`
/// into the channel and thread with the comment. Returns the file id.
pub async fn stream_upload(
    api: &SlackApi<'_>,
    upload: &FileUpload,
    source: AttachmentSource,
) -> Result<String, MethodError> {
    let AttachmentSource { length, body, stop } = source;
    let step = "files.getUploadURLExternal";
    let answer = api
        .call_form(
            step,
            &[
                ("filename", upload.filename.clone()),
                ("length", length.to_string()),
            ],
        )
        .await?;
    let without_code = |outcome| MethodError {
        code: None,
        outcome,
    };
    let field = |name: &str| {
        answer
            .rest
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                without_code(DeliveryError::retry(format!(
                    "{step}: answer without {name}"
                )))
            })
    };
    let upload_url = field("upload_url")?;
    let file_id = field("file_id")?;
    let sent = api
        .http
        .post(&upload_url)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        // A fixed length, as announced, rather than a chunked body.
        .header(http::header::CONTENT_LENGTH, length)
        .timeout(DOWNLOAD_TIMEOUT)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    // When the source stopped the body, its reason says what happened.
    let failed = |outcome| without_code(stop.take().unwrap_or(outcome));
    let response = sent.map_err(|error| failed(transport_error("file upload", &error)))?;
    classify_response(response.status(), response.headers(), "file upload").map_err(failed)?;
    if let Some(reason) = stop.take() {
        return Err(without_code(reason));
    }
    api.call_form(
        "files.completeUploadExternal",
        &complete_form(upload, &file_id),
    )
    .await?;
    Ok(file_id)
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
    fn the_upload_length_is_announced_or_declared_and_capped() {
        // The body will be what Content-Length says, whatever was declared.
        assert_eq!(upload_length("a.pdf", Some(90), Some(80), 100), Ok(90));
        assert_eq!(upload_length("a.pdf", None, Some(80), 100), Ok(80));
        assert_eq!(upload_length("a.pdf", Some(100), None, 100), Ok(100));
        assert!(matches!(
            upload_length("a.pdf", Some(101), Some(80), 100),
            Err(FileRefusal::TooLarge { size: 101, .. })
        ));
        assert!(matches!(
            upload_length("a.pdf", None, Some(101), 100),
            Err(FileRefusal::TooLarge { size: 101, .. })
        ));
        let unknown = upload_length("a.pdf", None, None, 100).unwrap_err();
        assert_eq!(
            unknown,
            FileRefusal::LengthUnknown {
                what: "a.pdf".into()
            }
        );
        assert!(
            matches!(
                unknown.into_delivery_error(),
                DeliveryError::Permanent {
                    reason: ReasonCode::InvalidMediaContentLength,
                    ..
                }
            ),
            "a source without a length will not get one on redelivery"
        );
    }

    /// What [`exactly`] passes on, and the reason it kept.
    async fn through_exactly(
        chunks: Vec<Result<&'static [u8], DeliveryError>>,
        length: u64,
    ) -> (Vec<Result<Bytes, String>>, Option<DeliveryError>) {
        let body = futures::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| chunk.map(Bytes::from_static)),
        )
        .boxed();
        let stop = StopReason::default();
        let passed = exactly(body, "a.pdf".into(), length, stop.clone())
            .map(|item| item.map_err(|error| error.to_string()))
            .collect()
            .await;
        (passed, stop.take())
    }

    #[tokio::test]
    async fn a_body_passes_when_it_is_exactly_the_announced_length() {
        let (passed, stopped) = through_exactly(vec![Ok(b"12345"), Ok(b"67890")], 10).await;
        assert_eq!(
            passed,
            vec![
                Ok(Bytes::from_static(b"12345")),
                Ok(Bytes::from_static(b"67890"))
            ]
        );
        assert_eq!(stopped, None);
    }

    #[tokio::test]
    async fn a_body_longer_than_announced_stops_at_the_chunk_passing_it() {
        let (passed, stopped) =
            through_exactly(vec![Ok(b"12345"), Ok(b"678901"), Ok(b"never read")], 10).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[0].is_ok());
        let error = passed[1].as_ref().unwrap_err();
        assert!(error.contains("more than the 10 bytes"), "{error}");
        assert_eq!(
            stopped,
            Some(DeliveryError::permanent(
                ReasonCode::InvalidMediaContentLength,
                "a.pdf sent more than the 10 bytes it announced"
            ))
        );
    }

    #[tokio::test]
    async fn a_body_going_on_past_an_exact_length_is_not_passed_as_whole() {
        // The upload's client reads no further than the length: the chunk
        // completing it must not pass while more follows.
        let (passed, stopped) =
            through_exactly(vec![Ok(b"12345"), Ok(b"67890"), Ok(b""), Ok(b"x")], 10).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[0].is_ok() && passed[1].is_err(), "{passed:?}");
        assert!(matches!(
            stopped,
            Some(DeliveryError::Permanent {
                reason: ReasonCode::InvalidMediaContentLength,
                ..
            })
        ));
        // Empty chunks before the end are no bytes more.
        let (passed, stopped) =
            through_exactly(vec![Ok(b"12345"), Ok(b"67890"), Ok(b"")], 10).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed.iter().all(Result::is_ok), "{passed:?}");
        assert_eq!(stopped, None);
        // A source failing where its end should be has not ended.
        let cut = DeliveryError::retry("download of a.pdf: body error");
        let (passed, stopped) =
            through_exactly(vec![Ok(b"1234567890"), Err(cut.clone())], 10).await;
        assert_eq!(passed.len(), 1, "{passed:?}");
        assert!(passed[0].is_err());
        assert_eq!(stopped, Some(cut));
    }

    #[tokio::test]
    async fn a_body_shorter_than_announced_fails_at_its_end() {
        let (passed, stopped) = through_exactly(vec![Ok(b"12345")], 10).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[1].is_err());
        assert_eq!(
            stopped,
            Some(DeliveryError::permanent(
                ReasonCode::InvalidMediaContentLength,
                "a.pdf ended after 5 of the 10 bytes it announced"
            ))
        );
    }

    #[tokio::test]
    async fn the_sources_own_failure_is_the_reason_kept() {
        let cut = DeliveryError::retry("download of a.pdf: body error");
        let (passed, stopped) =
            through_exactly(vec![Ok(b"12345"), Err(cut.clone()), Ok(b"67890")], 10).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[1].is_err());
        assert_eq!(stopped, Some(cut));
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
