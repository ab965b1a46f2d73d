//! Writes the CRD YAML of every kind into `crds/` and the identical copy the
//! Helm chart installs (`charts/universal-messaging/files/crds/`). With a
//! directory argument, writes only there.

use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs: Vec<PathBuf> = match std::env::args_os().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            manifest_dir.to_path_buf(),
            manifest_dir.join(um_crds::CHART_CRDS_DIR),
        ],
    };
    for dir in dirs {
        for file in um_crds::crd_files() {
            let path = dir.join(file.file_name);
            std::fs::write(&path, um_crds::render_crd_yaml(&file.crd))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
