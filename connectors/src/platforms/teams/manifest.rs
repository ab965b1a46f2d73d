//! The Teams app package (pure): a zip of `manifest.json`, `color.png`
//! (192×192) and `outline.png` (32×32) that an admin uploads to Teams.
//!
//! The package is deterministic (fixed entry times, stored entries), so its
//! content hash says whether anything changed; [`next_state`] bumps the
//! manifest version (Teams refuses an update with the same version) only
//! when the name, description, accent color, icons or bot change.
//! Without icons of its own, a tenant gets [`default_icons`]: a square in
//! its accent color and a white outline square.

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MANIFEST_SCHEMA: &str =
    "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json";
pub const MANIFEST_VERSION: &str = "1.17";
pub const COLOR_ICON_SIZE: u32 = 192;
pub const OUTLINE_ICON_SIZE: u32 = 32;
/// Teams' limit on `name.short`.
pub const SHORT_NAME_LIMIT: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("accent color {0:?} is not #RRGGBB")]
    AccentColor(String),
    #[error("bot name is empty or longer than {SHORT_NAME_LIMIT} characters")]
    Name,
    #[error("{file} must be a {size}x{size} PNG")]
    Icon { file: &'static str, size: u32 },
    #[error("zip: {0}")]
    Zip(String),
}

/// Everything the package is made of, except its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDefinition {
    /// The Microsoft App ID of the bot (also the Teams app id).
    pub bot_id: String,
    pub name: String,
    pub description: String,
    pub developer_name: String,
    pub website_url: String,
    pub privacy_url: String,
    pub terms_url: String,
    /// `#RRGGBB`.
    pub accent_color: String,
    pub color_icon: Vec<u8>,
    pub outline_icon: Vec<u8>,
}

/// The last package built for a tenant: what the operator or a CLI shows
/// and compares against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageState {
    pub version: String,
    pub content_hash: String,
}

fn parse_color(color: &str) -> Option<[u8; 3]> {
    let hex = color.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let bytes = hex::decode(hex).ok()?;
    Some([bytes[0], bytes[1], bytes[2]])
}

/// Width and height of a PNG, from its IHDR.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((width, height))
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// An RGBA PNG of `size`×`size` pixels from `pixel(x, y)` (stored deflate).
pub fn png(size: u32, pixel: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((size * (size * 4 + 1)) as usize);
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(index + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A color icon filled with the accent color and a white outline icon
/// (a 3-pixel frame on transparency), as Teams requires them.
pub fn default_icons(accent_color: &str) -> Result<(Vec<u8>, Vec<u8>), ManifestError> {
    let [r, g, b] = parse_color(accent_color)
        .ok_or_else(|| ManifestError::AccentColor(accent_color.to_owned()))?;
    let color = png(COLOR_ICON_SIZE, |_, _| [r, g, b, 255]);
    let edge = OUTLINE_ICON_SIZE - 3;
    let outline = png(OUTLINE_ICON_SIZE, |x, y| {
        if x < 3 || y < 3 || x >= edge || y >= edge {
            [255, 255, 255, 255]
        } else {
            [0, 0, 0, 0]
        }
    });
    Ok((color, outline))
}

/// Accent color when a tenant names none (Teams' own blue).
pub const DEFAULT_ACCENT_COLOR: &str = "#0078D4";

/// A tenant's app from `spec.messaging.teams.app`: the bot name (else the
/// tenant's display name), accent colour, description and URLs, with
/// defaults for what is absent, and the default icons.
pub fn definition_for(
    display_name: &str,
    app_id: &str,
    settings: &um_config::TeamsAppConfig,
    webhook_url: &str,
) -> Result<AppDefinition, ManifestError> {
    let setting = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let name: String = setting(&settings.bot_name)
        .unwrap_or_else(|| display_name.to_owned())
        .chars()
        .take(SHORT_NAME_LIMIT)
        .collect();
    let accent_color =
        setting(&settings.accent_color).unwrap_or_else(|| DEFAULT_ACCENT_COLOR.to_owned());
    let (color_icon, outline_icon) = default_icons(&accent_color)?;
    let website = setting(&settings.website_url).unwrap_or_else(|| {
        url::Url::parse(webhook_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    });
    Ok(AppDefinition {
        bot_id: app_id.to_owned(),
        description: setting(&settings.description).unwrap_or_else(|| format!("Chat with {name}")),
        developer_name: display_name.to_owned(),
        privacy_url: setting(&settings.privacy_url).unwrap_or_else(|| website.clone()),
        terms_url: setting(&settings.terms_url).unwrap_or_else(|| website.clone()),
        website_url: website,
        name,
        accent_color,
        color_icon,
        outline_icon,
    })
}

fn validate(app: &AppDefinition) -> Result<(), ManifestError> {
    parse_color(&app.accent_color)
        .ok_or_else(|| ManifestError::AccentColor(app.accent_color.clone()))?;
    let name_len = app.name.chars().count();
    if name_len == 0 || name_len > SHORT_NAME_LIMIT {
        return Err(ManifestError::Name);
    }
    for (file, bytes, size) in [
        ("color.png", &app.color_icon, COLOR_ICON_SIZE),
        ("outline.png", &app.outline_icon, OUTLINE_ICON_SIZE),
    ] {
        if png_size(bytes) != Some((size, size)) {
            return Err(ManifestError::Icon { file, size });
        }
    }
    Ok(())
}

/// `manifest.json` of `app` at `version`.
pub fn manifest(app: &AppDefinition, version: &str) -> Value {
    json!({
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app.bot_id,
        "developer": {
            "name": app.developer_name,
            "websiteUrl": app.website_url,
            "privacyUrl": app.privacy_url,
            "termsOfUseUrl": app.terms_url,
        },
        "name": {"short": app.name, "full": app.name},
        "description": {"short": app.description.chars().take(80).collect::<String>(), "full": app.description},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": app.accent_color,
        "bots": [{
            "botId": app.bot_id,
            "scopes": ["personal", "team", "groupChat"],
            "supportsFiles": true,
            "isNotificationOnly": false,
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
    })
}

/// Hash of everything that goes into the package but the version.
pub fn content_hash(app: &AppDefinition) -> String {
    let manifest = manifest(app, "0.0.0").to_string();
    let mut hasher = Sha256::new();
    for part in [manifest.as_bytes(), &app.color_icon, &app.outline_icon] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The version for `app` given the last package: unchanged content keeps
/// it, changed content bumps the patch number, the first package is 1.0.0.
pub fn next_state(previous: Option<&PackageState>, app: &AppDefinition) -> PackageState {
    let content_hash = content_hash(app);
    let version = match previous {
        None => "1.0.0".to_owned(),
        Some(previous) if previous.content_hash == content_hash => previous.version.clone(),
        Some(previous) => bump_patch(&previous.version),
    };
    PackageState {
        version,
        content_hash,
    }
}

fn bump_patch(version: &str) -> String {
    let mut parts: Vec<u64> = version
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .chain(std::iter::repeat(0))
        .take(3)
        .collect();
    parts[2] += 1;
    format!("{}.{}.{}", parts[0], parts[1], parts[2])
}

/// The zip Teams takes: `manifest.json`, `color.png`, `outline.png`.
pub fn package(app: &AppDefinition, version: &str) -> Result<Vec<u8>, ManifestError> {
    validate(app)?;
    let manifest = serde_json::to_vec_pretty(&manifest(app, version))
        .map_err(|e| ManifestError::Zip(e.to_string()))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, bytes) in [
        ("manifest.json", manifest.as_slice()),
        ("color.png", app.color_icon.as_slice()),
        ("outline.png", app.outline_icon.as_slice()),
    ] {
        zip.start_file(name, options)
            .map_err(|e| ManifestError::Zip(e.to_string()))?;
        zip.write_all(bytes)
            .map_err(|e| ManifestError::Zip(e.to_string()))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| ManifestError::Zip(e.to_string()))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn app() -> AppDefinition {
        let (color_icon, outline_icon) = default_icons("#0078D4").unwrap();
        AppDefinition {
            bot_id: "00000000-0000-0000-0000-0000000000a1".into(),
            name: "ACME Support".into(),
            description: "Talk to ACME's contact center".into(),
            developer_name: "ACME".into(),
            website_url: "https://acme.example".into(),
            privacy_url: "https://acme.example/privacy".into(),
            terms_url: "https://acme.example/terms".into(),
            accent_color: "#0078D4".into(),
            color_icon,
            outline_icon,
        }
    }

    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                let mut data = Vec::new();
                file.read_to_end(&mut data).unwrap();
                (file.name().to_owned(), data)
            })
            .collect()
    }

    #[test]
    fn the_package_holds_the_manifest_and_both_icons() {
        let app = app();
        let files = unzip(&package(&app, "1.0.3").unwrap());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["manifest.json", "color.png", "outline.png"]);
        let manifest: Value = serde_json::from_slice(&files[0].1).unwrap();
        assert_eq!(manifest["version"], "1.0.3");
        assert_eq!(manifest["name"]["short"], "ACME Support");
        assert_eq!(manifest["accentColor"], "#0078D4");
        assert_eq!(manifest["bots"][0]["botId"], app.bot_id);
        assert_eq!(
            manifest["bots"][0]["scopes"],
            json!(["personal", "team", "groupChat"])
        );
        assert_eq!(png_size(&files[1].1), Some((192, 192)));
        assert_eq!(png_size(&files[2].1), Some((32, 32)));
        assert_eq!(files[1].1, app.color_icon);
        // Deterministic: the same input gives the same bytes.
        assert_eq!(
            package(&app, "1.0.3").unwrap(),
            package(&app, "1.0.3").unwrap()
        );
    }

    #[test]
    fn generated_pngs_are_well_formed() {
        let icon = png(2, |x, _| if x == 0 { [1, 2, 3, 255] } else { [0, 0, 0, 0] });
        // IHDR CRC of a 2x2 RGBA image, and the IEND chunk every PNG ends with.
        assert_eq!(&icon[icon.len() - 12..], b"\0\0\0\0IEND\xaeB`\x82");
        assert_eq!(png_size(&icon), Some((2, 2)));
    }

    #[test]
    fn version_bumps_only_when_something_changes() {
        let first = next_state(None, &app());
        assert_eq!(first.version, "1.0.0");
        assert_eq!(next_state(Some(&first), &app()), first);
        let mut renamed = app();
        renamed.name = "ACME Help".into();
        let second = next_state(Some(&first), &renamed);
        assert_eq!(second.version, "1.0.1");
        assert_ne!(second.content_hash, first.content_hash);
        let mut recolored = renamed.clone();
        recolored.accent_color = "#FF0000".into();
        assert_eq!(next_state(Some(&second), &recolored).version, "1.0.2");
        let mut new_icon = renamed;
        new_icon.color_icon = default_icons("#00FF00").unwrap().0;
        assert_eq!(next_state(Some(&second), &new_icon).version, "1.0.2");
    }

    #[test]
    fn a_tenant_definition_from_settings_and_defaults() {
        let mut settings = um_config::TeamsAppConfig::default();
        let app = definition_for(
            "ACME Corporation",
            "app-1",
            &settings,
            "https://um.acme.example/teams/shop.acme",
        )
        .unwrap();
        assert_eq!(app.name, "ACME Corporation");
        assert_eq!(app.accent_color, DEFAULT_ACCENT_COLOR);
        assert_eq!(app.website_url, "https://um.acme.example");
        assert!(package(&app, "1.0.0").is_ok());
        settings.bot_name = Some("ACME Help".to_owned());
        settings.accent_color = Some("#FF8800".to_owned());
        let custom = definition_for(
            "ACME Corporation",
            "app-1",
            &settings,
            "https://um.acme.example/",
        )
        .unwrap();
        assert_eq!(custom.name, "ACME Help");
        assert_eq!(
            next_state(Some(&next_state(None, &app)), &custom).version,
            "1.0.1"
        );
        settings.accent_color = Some("orange".to_owned());
        assert!(definition_for("ACME", "app-1", &settings, "https://x/").is_err());
    }

    #[test]
    fn bad_definitions_are_refused() {
        let mut bad = app();
        bad.accent_color = "blue".into();
        assert_eq!(
            package(&bad, "1.0.0").unwrap_err(),
            ManifestError::AccentColor("blue".into())
        );
        let mut bad = app();
        bad.outline_icon = bad.color_icon.clone();
        assert_eq!(
            package(&bad, "1.0.0").unwrap_err(),
            ManifestError::Icon {
                file: "outline.png",
                size: 32
            }
        );
        let mut bad = app();
        bad.name = "x".repeat(31);
        assert_eq!(package(&bad, "1.0.0").unwrap_err(), ManifestError::Name);
    }
}
