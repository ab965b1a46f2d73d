//! Secret, ConfigMap, downward-API and projected volumes: which files they
//! hold (pure), and writing them with the kubelet's atomic layout.
//!
//! Layout of a volume directory, as the kubelet's AtomicWriter makes it:
//! `..<timestamp>/` holds the files, `..data` is a symlink to it, and each
//! top-level name is a symlink `name -> ..data/name`. An update writes a new
//! timestamp directory and renames a new `..data` link over the old one, so
//! a reader sees either the old or the new set of files, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, ConfigMapVolumeSource, DownwardAPIVolumeFile, KeyToPath, SecretProjection,
    SecretVolumeSource, Volume,
};

use crate::env::{PodFacts, field_value};
use crate::lookup::ObjectLookup;

/// One file of a volume: path relative to the volume root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Default file mode of Secret, ConfigMap, downward-API and projected
/// volumes (0644).
pub const DEFAULT_MODE: i32 = 0o644;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeError {
    #[error("volume {volume}: secret {name:?} not found")]
    SecretMissing { volume: String, name: String },
    #[error("volume {volume}: configmap {name:?} not found")]
    ConfigMapMissing { volume: String, name: String },
    #[error("volume {volume}: key {key:?} not found in {kind} {name:?}")]
    KeyMissing {
        volume: String,
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("volume {volume}: path {path:?} must be relative and stay inside the volume")]
    BadPath { volume: String, path: String },
    #[error("volume {volume}: unsupported downward API field {path:?}")]
    UnsupportedField { volume: String, path: String },
    #[error("volume {volume}: no service account token was issued")]
    NoToken { volume: String },
    #[error(
        "volume {volume}: unsupported volume type (only secret, configMap, downwardAPI, projected, emptyDir)"
    )]
    Unsupported { volume: String },
}

/// What a volume becomes on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeContent {
    /// An empty directory the container owns.
    EmptyDir,
    /// Files kept in sync with their sources.
    Files(Vec<VolumeFile>),
}

/// A service account token issued for the Pod (TokenRequest).
pub struct IssuedToken<'a> {
    pub token: &'a str,
}

fn check_path(volume: &str, path: &str) -> Result<(), VolumeError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|seg| seg == ".." || seg.starts_with(".."));
    if bad {
        Err(VolumeError::BadPath {
            volume: volume.into(),
            path: path.into(),
        })
    } else {
        Ok(())
    }
}

/// Files from a key->bytes map, honouring `items` (select and rename keys).
fn key_files(
    volume: &str,
    kind: &'static str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: i32,
) -> Result<Vec<VolumeFile>, VolumeError> {
    let mode = |m: Option<i32>| (m.unwrap_or(default_mode) & 0o777) as u32;
    match items {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                check_path(volume, &item.path)?;
                let bytes = data.get(&item.key).ok_or_else(|| VolumeError::KeyMissing {
                    volume: volume.into(),
                    kind,
                    name: name.into(),
                    key: item.key.clone(),
                })?;
                Ok(VolumeFile {
                    path: item.path.clone(),
                    data: bytes.clone(),
                    mode: mode(item.mode),
                })
            })
            .collect(),
        _ => data
            .iter()
            .map(|(k, v)| {
                check_path(volume, k)?;
                Ok(VolumeFile {
                    path: k.clone(),
                    data: v.clone(),
                    mode: mode(None),
                })
            })
            .collect(),
    }
}

fn secret_data(lookup: &dyn ObjectLookup, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    lookup.secret(name).map(|s| {
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    })
}

fn config_map_data(lookup: &dyn ObjectLookup, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    lookup.config_map(name).map(|c| {
        let mut data: BTreeMap<String, Vec<u8>> = c
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        for (k, v) in c.binary_data.unwrap_or_default() {
            data.insert(k, v.0);
        }
        data
    })
}

fn secret_files(
    volume: &str,
    src: &SecretVolumeSource,
    lookup: &dyn ObjectLookup,
) -> Result<Vec<VolumeFile>, VolumeError> {
    let name = src.secret_name.clone().unwrap_or_default();
    match secret_data(lookup, &name) {
        Some(data) => key_files(
            volume,
            "secret",
            &name,
            &data,
            src.items.as_ref(),
            src.default_mode.unwrap_or(DEFAULT_MODE),
        ),
        None if src.optional.unwrap_or(false) => Ok(Vec::new()),
        None => Err(VolumeError::SecretMissing {
            volume: volume.into(),
            name,
        }),
    }
}

fn config_map_files(
    volume: &str,
    src: &ConfigMapVolumeSource,
    lookup: &dyn ObjectLookup,
) -> Result<Vec<VolumeFile>, VolumeError> {
    match config_map_data(lookup, &src.name) {
        Some(data) => key_files(
            volume,
            "configmap",
            &src.name,
            &data,
            src.items.as_ref(),
            src.default_mode.unwrap_or(DEFAULT_MODE),
        ),
        None if src.optional.unwrap_or(false) => Ok(Vec::new()),
        None => Err(VolumeError::ConfigMapMissing {
            volume: volume.into(),
            name: src.name.clone(),
        }),
    }
}

fn downward_files(
    volume: &str,
    items: &[DownwardAPIVolumeFile],
    facts: &PodFacts,
    default_mode: i32,
) -> Result<Vec<VolumeFile>, VolumeError> {
    items
        .iter()
        .map(|item| {
            check_path(volume, &item.path)?;
            let field = item
                .field_ref
                .as_ref()
                .map(|f| f.field_path.as_str())
                .unwrap_or("");
            let value = field_value(facts, field).ok_or_else(|| VolumeError::UnsupportedField {
                volume: volume.into(),
                path: field.into(),
            })?;
            Ok(VolumeFile {
                path: item.path.clone(),
                data: value.into_bytes(),
                mode: (item.mode.unwrap_or(default_mode) & 0o777) as u32,
            })
        })
        .collect()
}

/// The files of one Pod volume. `token` is the service account token issued
/// for the Pod, needed by projected `serviceAccountToken` sources.
pub fn volume_content(
    volume: &Volume,
    facts: &PodFacts,
    lookup: &dyn ObjectLookup,
    token: Option<&IssuedToken<'_>>,
) -> Result<VolumeContent, VolumeError> {
    let name = volume.name.as_str();
    if volume.empty_dir.is_some() {
        return Ok(VolumeContent::EmptyDir);
    }
    if let Some(src) = &volume.secret {
        return secret_files(name, src, lookup).map(VolumeContent::Files);
    }
    if let Some(src) = &volume.config_map {
        return config_map_files(name, src, lookup).map(VolumeContent::Files);
    }
    if let Some(src) = &volume.downward_api {
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        return downward_files(name, src.items.as_deref().unwrap_or(&[]), facts, mode)
            .map(VolumeContent::Files);
    }
    if let Some(src) = &volume.projected {
        let default_mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let mut files = Vec::new();
        for source in src.sources.iter().flatten() {
            if let Some(SecretProjection {
                name: secret,
                items,
                optional,
            }) = &source.secret
            {
                let as_volume = SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    items: items.clone(),
                    optional: *optional,
                    default_mode: Some(default_mode),
                };
                files.extend(secret_files(name, &as_volume, lookup)?);
            }
            if let Some(ConfigMapProjection {
                name: cm,
                items,
                optional,
            }) = &source.config_map
            {
                let as_volume = ConfigMapVolumeSource {
                    name: cm.clone(),
                    items: items.clone(),
                    optional: *optional,
                    default_mode: Some(default_mode),
                };
                files.extend(config_map_files(name, &as_volume, lookup)?);
            }
            if let Some(d) = &source.downward_api {
                files.extend(downward_files(
                    name,
                    d.items.as_deref().unwrap_or(&[]),
                    facts,
                    default_mode,
                )?);
            }
            if let Some(sat) = &source.service_account_token {
                check_path(name, &sat.path)?;
                let token = token.ok_or_else(|| VolumeError::NoToken {
                    volume: name.into(),
                })?;
                files.push(VolumeFile {
                    path: sat.path.clone(),
                    data: token.token.as_bytes().to_vec(),
                    // The kubelet writes tokens 0600 unless a mode is set.
                    mode: src.default_mode.map_or(0o600, |m| (m & 0o777) as u32),
                });
            }
        }
        return Ok(VolumeContent::Files(files));
    }
    Err(VolumeError::Unsupported {
        volume: name.into(),
    })
}

/// The serviceAccountToken sources of a Pod's volumes: (audience,
/// expirationSeconds); the runner issues one token per distinct pair.
pub fn token_requests(volumes: &[Volume]) -> BTreeSet<(Option<String>, i64)> {
    volumes
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .map(|t| (t.audience.clone(), t.expiration_seconds.unwrap_or(3600)))
        .collect()
}

/// Reads the files currently published in `dir` (through `..data`).
/// Published files: relative path -> (content, mode).
type Published = BTreeMap<String, (Vec<u8>, u32)>;

fn published(dir: &Path) -> io::Result<Option<Published>> {
    let data = dir.join("..data");
    if std::fs::symlink_metadata(&data).is_err() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![(data.clone(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.insert(
                    rel,
                    (
                        std::fs::read(entry.path())?,
                        meta.permissions().mode() & 0o777,
                    ),
                );
            }
        }
    }
    Ok(Some(out))
}

/// Publishes `files` in `dir` with the atomic layout. Returns whether
/// anything changed (an unchanged set is not rewritten).
pub fn write_atomic(dir: &Path, files: &[VolumeFile]) -> io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let wanted: Published = files
        .iter()
        .map(|f| (f.path.clone(), (f.data.clone(), f.mode)))
        .collect();
    let current = published(dir)?;
    if current.as_ref() == Some(&wanted) {
        return Ok(false);
    }

    let stamp = format!(
        "..{}.{}",
        chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S%.f"),
        std::process::id()
    );
    let ts_dir = dir.join(&stamp);
    std::fs::create_dir(&ts_dir)?;
    for (path, (data, mode)) in &wanted {
        let target = ts_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))?;

    let old_target = std::fs::read_link(dir.join("..data")).ok();
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    std::fs::rename(&tmp_link, dir.join("..data"))?;

    // Top-level names point through ..data; add new ones, drop stale ones.
    let top: BTreeSet<String> = wanted
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p).to_owned())
        .collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !top.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    if let Some(old) = old_target {
        let old = dir.join(old);
        if old != ts_dir {
            std::fs::remove_dir_all(old)?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::MapLookup;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ObjectFieldSelector, ProjectedVolumeSource, Secret, ServiceAccountTokenProjection,
        VolumeProjection,
    };

    fn lookup_with_secret(pairs: &[(&str, &str)]) -> MapLookup {
        let mut l = MapLookup::default();
        l.secrets.insert(
            "cfg".into(),
            Secret {
                data: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                        .collect(),
                ),
                ..Default::default()
            },
        );
        l
    }

    fn secret_volume(items: Option<Vec<KeyToPath>>, mode: Option<i32>) -> Volume {
        Volume {
            name: "config".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("cfg".into()),
                items,
                default_mode: mode,
                optional: None,
            }),
            ..Default::default()
        }
    }

    fn files(content: VolumeContent) -> Vec<VolumeFile> {
        match content {
            VolumeContent::Files(f) => f,
            VolumeContent::EmptyDir => panic!("expected files"),
        }
    }

    #[test]
    fn secret_volume_all_keys_with_default_mode() {
        let l = lookup_with_secret(&[("service.json", "{}"), ("b", "2")]);
        let f = files(
            volume_content(
                &secret_volume(None, Some(0o400)),
                &PodFacts::default(),
                &l,
                None,
            )
            .unwrap(),
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].path, "service.json");
        assert_eq!(f[1].data, b"{}");
        assert_eq!(f[1].mode, 0o400);
    }

    #[test]
    fn secret_volume_items_select_rename_and_set_mode() {
        let l = lookup_with_secret(&[("a", "1"), ("b", "2")]);
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/renamed".into(),
            mode: Some(0o600),
        }];
        let f = files(
            volume_content(
                &secret_volume(Some(items), None),
                &PodFacts::default(),
                &l,
                None,
            )
            .unwrap(),
        );
        assert_eq!(
            f,
            vec![VolumeFile {
                path: "sub/renamed".into(),
                data: b"2".to_vec(),
                mode: 0o600
            }]
        );
        let missing = vec![KeyToPath {
            key: "zzz".into(),
            path: "x".into(),
            mode: None,
        }];
        assert!(matches!(
            volume_content(
                &secret_volume(Some(missing), None),
                &PodFacts::default(),
                &l,
                None
            ),
            Err(VolumeError::KeyMissing { .. })
        ));
        let escape = vec![KeyToPath {
            key: "a".into(),
            path: "../etc/passwd".into(),
            mode: None,
        }];
        assert!(matches!(
            volume_content(
                &secret_volume(Some(escape), None),
                &PodFacts::default(),
                &l,
                None
            ),
            Err(VolumeError::BadPath { .. })
        ));
        assert!(matches!(
            volume_content(
                &secret_volume(None, None),
                &PodFacts::default(),
                &MapLookup::default(),
                None
            ),
            Err(VolumeError::SecretMissing { .. })
        ));
    }

    #[test]
    fn projected_service_account_volume() {
        let mut l = MapLookup::default();
        l.config_maps.insert(
            "kube-root-ca.crt".into(),
            k8s_openapi::api::core::v1::ConfigMap {
                data: Some(
                    [("ca.crt".to_string(), "PEM".to_string())]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
        );
        let volume = Volume {
            name: "kube-api-access-x".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o644),
                sources: Some(vec![
                    VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            path: "token".into(),
                            expiration_seconds: Some(3607),
                            audience: None,
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: "kube-root-ca.crt".into(),
                            items: Some(vec![KeyToPath {
                                key: "ca.crt".into(),
                                path: "ca.crt".into(),
                                mode: None,
                            }]),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        downward_api: Some(k8s_openapi::api::core::v1::DownwardAPIProjection {
                            items: Some(vec![DownwardAPIVolumeFile {
                                path: "namespace".into(),
                                field_ref: Some(ObjectFieldSelector {
                                    field_path: "metadata.namespace".into(),
                                    api_version: Some("v1".into()),
                                }),
                                ..Default::default()
                            }]),
                        }),
                        ..Default::default()
                    },
                ]),
            }),
            ..Default::default()
        };
        let facts = PodFacts {
            namespace: "um-system".into(),
            ..Default::default()
        };
        assert_eq!(
            token_requests(std::slice::from_ref(&volume)),
            [(None, 3607)].into_iter().collect()
        );
        assert!(matches!(
            volume_content(&volume, &facts, &l, None),
            Err(VolumeError::NoToken { .. })
        ));
        let token = IssuedToken { token: "eyJ.tok" };
        let f = files(volume_content(&volume, &facts, &l, Some(&token)).unwrap());
        let by_path: BTreeMap<_, _> = f.iter().map(|f| (f.path.as_str(), f)).collect();
        assert_eq!(by_path["token"].data, b"eyJ.tok");
        assert_eq!(by_path["ca.crt"].data, b"PEM");
        assert_eq!(by_path["namespace"].data, b"um-system");
    }

    #[test]
    fn atomic_writer_swaps_data_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        let file = |p: &str, d: &str| VolumeFile {
            path: p.into(),
            data: d.as_bytes().to_vec(),
            mode: 0o644,
        };
        assert!(write_atomic(&vol, &[file("a", "1"), file("d/b", "2")]).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(vol.join("d/b")).unwrap(), "2");
        assert!(
            std::fs::symlink_metadata(vol.join("a"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let first = std::fs::read_link(vol.join("..data")).unwrap();

        assert!(!write_atomic(&vol, &[file("a", "1"), file("d/b", "2")]).unwrap());
        assert_eq!(std::fs::read_link(vol.join("..data")).unwrap(), first);

        assert!(write_atomic(&vol, &[file("a", "changed")]).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "changed");
        assert!(
            std::fs::symlink_metadata(vol.join("d")).is_err(),
            "stale link removed"
        );
        assert!(!vol.join(&first).exists(), "old generation removed");
        let entries: Vec<_> = std::fs::read_dir(&vol)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries.len(),
            3,
            "a, ..data and one generation: {entries:?}"
        );
    }
}
