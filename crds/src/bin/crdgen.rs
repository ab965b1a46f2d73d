//! Writes the CRD YAML of every kind into the `crds/` directory (or the
//! directory given as the first argument).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for file in um_crds::crd_files() {
        let path = dir.join(file.file_name);
        std::fs::write(&path, um_crds::render_crd_yaml(&file.crd))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
