# Formatting, lints and every Rust test of the workspace.
set -euo pipefail
source "$(dirname "$0")/../lib/env.sh"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
