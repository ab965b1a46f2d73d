//! The media reference put into the connector's signed URL: the kind of
//! Viber message and its media URL, base64url-encoded. Viber media URLs
//! need no credential but expire and reveal Viber's storage; Genesys gets
//! the connector's URL instead, and only a reference the connector signed
//! (so one it took from a verified callback) is ever fetched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// picture, video, file or sticker.
    pub kind: String,
    pub url: String,
    pub file_name: Option<String>,
}

impl MediaRef {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.kind,
            URL_SAFE_NO_PAD.encode(self.url.as_bytes())
        )
    }

    pub fn decode(reference: &str) -> Option<Self> {
        let (kind, encoded) = reference.split_once('.')?;
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
        if !matches!(kind, "picture" | "video" | "file" | "sticker")
            || !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return None;
        }
        Some(Self {
            kind: kind.to_owned(),
            url,
            file_name: None,
        })
    }

    /// The MIME type to announce when the media host does not say.
    pub fn default_mime(&self) -> &'static str {
        match self.kind.as_str() {
            "picture" => "image/jpeg",
            "video" => "video/mp4",
            "sticker" => "image/png",
            _ => self
                .file_name
                .as_deref()
                .and_then(mime_from_name)
                .unwrap_or("application/octet-stream"),
        }
    }
}

pub fn mime_from_name(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let media = MediaRef {
            kind: "picture".into(),
            url: "https://dl-media.viber.com/1/share/2/long/bots/2158/a.jpg?x=1&y=2".into(),
            file_name: None,
        };
        let encoded = media.encode();
        assert!(encoded.starts_with("picture."));
        assert!(!encoded.contains('/') && !encoded.contains('?'));
        assert_eq!(MediaRef::decode(&encoded), Some(media));
    }

    #[test]
    fn refuses_foreign_kinds_and_schemes() {
        let file = MediaRef {
            kind: "file".into(),
            url: "file:///etc/passwd".into(),
            file_name: None,
        };
        assert_eq!(MediaRef::decode(&file.encode()), None);
        assert_eq!(MediaRef::decode("other.aHR0cHM6Ly94"), None);
        assert_eq!(MediaRef::decode("picture.!!!"), None);
        assert_eq!(MediaRef::decode("nodot"), None);
    }

    #[test]
    fn mime_defaults() {
        let file = |name: &str| MediaRef {
            kind: "file".into(),
            url: "https://x".into(),
            file_name: Some(name.into()),
        };
        assert_eq!(file("report.PDF").default_mime(), "application/pdf");
        assert_eq!(file("blob").default_mime(), "application/octet-stream");
    }
}
