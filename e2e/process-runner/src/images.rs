//! Which local binary plays which container image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_openapi::api::core::v1::PodSpec;

/// One `--image NAME=PATH` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMapping {
    pub name: String,
    pub binary: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageMappingError {
    #[error("image mapping {0:?} is not NAME=PATH")]
    Syntax(String),
    #[error("image mapping for {name:?}: the binary path {path:?} is not absolute")]
    RelativePath { name: String, path: String },
}

impl FromStr for ImageMapping {
    type Err = ImageMappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, path) = s
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty() && !n.contains('/'))
            .ok_or_else(|| ImageMappingError::Syntax(s.to_owned()))?;
        if !path.starts_with('/') {
            return Err(ImageMappingError::RelativePath {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        Ok(ImageMapping {
            name: name.to_owned(),
            binary: PathBuf::from(path),
        })
    }
}

/// The last path segment of an image reference's repository, without tag or
/// digest: `ghcr.io/acme/um-operator:1.2@sha256:...` -> `um-operator`.
pub fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    // A ':' in the last segment can only be a tag (a registry port is never
    // in the last segment).
    last.split(':').next().unwrap_or(last)
}

/// The program to run for a container's `argv[0]`: a command naming the
/// image's own program (`/um-operator`, `python3` for image `python3`) or
/// the mapped binary's file name means the mapped binary; anything else is
/// a program of the host.
pub fn program_for(argv0: &str, image: &str, binary: &Path) -> String {
    let base = Path::new(argv0).file_name().and_then(|f| f.to_str());
    let own = base.is_some_and(|b| b == image_name(image))
        || base.is_some() && base == binary.file_name().and_then(|f| f.to_str());
    if own {
        binary.display().to_string()
    } else {
        argv0.to_owned()
    }
}

/// The set of images this runner can run.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    by_name: BTreeMap<String, PathBuf>,
}

impl ImageMap {
    pub fn new(mappings: impl IntoIterator<Item = ImageMapping>) -> Self {
        ImageMap {
            by_name: mappings.into_iter().map(|m| (m.name, m.binary)).collect(),
        }
    }

    pub fn binary_for(&self, image: &str) -> Option<&Path> {
        self.by_name.get(image_name(image)).map(PathBuf::as_path)
    }

    /// True when every container (init containers included) has a binary:
    /// only such Pods are bound to this node; the others stay Pending.
    pub fn runs_pod(&self, spec: &PodSpec) -> bool {
        !spec.containers.is_empty()
            && spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .all(|c| {
                    c.image
                        .as_deref()
                        .and_then(|i| self.binary_for(i))
                        .is_some()
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    fn container(image: &str) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn image_name_strips_registry_tag_and_digest() {
        assert_eq!(image_name("um-operator"), "um-operator");
        assert_eq!(image_name("um-operator:0.1.0"), "um-operator");
        assert_eq!(image_name("ghcr.io/acme/um-connector:1.2"), "um-connector");
        assert_eq!(image_name("localhost:5000/um-connector"), "um-connector");
        assert_eq!(
            image_name("registry:5000/x/um-connector:v1@sha256:abcd"),
            "um-connector"
        );
    }

    #[test]
    fn argv0_naming_the_image_program_is_the_mapped_binary() {
        let bin = Path::new("/target/debug/um-connector");
        assert_eq!(
            program_for("/um-connector", "x.io/um-connector:1", bin),
            "/target/debug/um-connector"
        );
        assert_eq!(
            program_for("/usr/local/bin/connector", "x.io/connector:1", bin),
            "/target/debug/um-connector"
        );
        assert_eq!(
            program_for("um-connector", "x.io/other:1", bin),
            "/target/debug/um-connector"
        );
        assert_eq!(program_for("sh", "x.io/um-connector:1", bin), "sh");
        assert_eq!(
            program_for("/bin/sh", "x.io/um-connector:1", bin),
            "/bin/sh"
        );
    }

    #[test]
    fn mapping_parses_and_rejects_bad_input() {
        let m: ImageMapping = "um-operator=/opt/bin/um-operator".parse().unwrap();
        assert_eq!(m.name, "um-operator");
        assert_eq!(m.binary, PathBuf::from("/opt/bin/um-operator"));
        assert!(matches!(
            "um-operator".parse::<ImageMapping>(),
            Err(ImageMappingError::Syntax(_))
        ));
        assert!(matches!(
            "um-operator=bin/x".parse::<ImageMapping>(),
            Err(ImageMappingError::RelativePath { .. })
        ));
        assert!(matches!(
            "a/b=/x".parse::<ImageMapping>(),
            Err(ImageMappingError::Syntax(_))
        ));
    }

    #[test]
    fn runs_pod_only_when_every_image_is_mapped() {
        let map = ImageMap::new(["um-operator=/bin/true".parse().unwrap()]);
        assert_eq!(
            map.binary_for("x.io/um-operator:3"),
            Some(Path::new("/bin/true"))
        );
        let mut spec = PodSpec {
            containers: vec![container("x.io/um-operator:3")],
            ..Default::default()
        };
        assert!(map.runs_pod(&spec));
        spec.containers.push(container("nginx:1.27"));
        assert!(!map.runs_pod(&spec));
        spec.containers.pop();
        spec.init_containers = Some(vec![container("busybox")]);
        assert!(!map.runs_pod(&spec));
        assert!(!map.runs_pod(&PodSpec::default()));
    }
}
