//! The CRD YAML checked in under `crds/` must be what the Rust types
//! produce, and the chart must install the same CRDs.

use std::path::Path;

const REGENERATE: &str = "cargo run -p um-crds --bin crdgen";

#[test]
fn checked_in_crd_yaml_and_the_chart_copy_match_the_types() {
    let crds = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [crds.to_path_buf(), crds.join(um_crds::CHART_CRDS_DIR)] {
        check_dir(&dir);
    }
}

fn check_dir(dir: &Path) {
    for file in um_crds::crd_files() {
        let path = dir.join(file.file_name);
        let expected = um_crds::render_crd_yaml(&file.crd);
        let found = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!("cannot read {}: {err}; run `{REGENERATE}`", path.display())
        });
        assert!(
            found == expected,
            "{} differs from what the Rust types produce; run `{REGENERATE}` and commit the result",
            path.display()
        );
    }
}
