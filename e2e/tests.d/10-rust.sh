# Formatting, lints and every Rust test of the workspace. Tests that need a
# broker or Redis get real ones, started here (e2e/services.sh) and named
# by UM_TEST_AMQP_URL, UM_TEST_REDIS_URL and UM_TEST_BROKER_RESTART.
set -euo pipefail
source "$(dirname "$0")/../lib/env.sh"
source "$(dirname "$0")/../services.sh"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

services_run=$(mktemp -d "${TMPDIR:-/tmp}/um-services.XXXXXX")
trap 'um_services_stop "$services_run"; rm -rf "$services_run"' EXIT
um_services_start "$services_run"
cargo test --workspace --locked
