# The short fault suite (um-faults --short): 1,000 messages over 100
# conversations in both directions through the connectors, over a RabbitMQ
# and Redis of its own, under each of the seven faults in turn (outages of
# 8 s); fails unless nothing was lost, reordered, duplicated (but where a
# connector was SIGKILLed) or dead-lettered (the
# revoked Tenant's own messages may be dead-lettered only past its budget,
# which the short outage never reaches). The full suite and its figures:
# `cargo run --release -p um-flood --bin um-faults` (README).
set -euo pipefail
source "$(dirname "$0")/../lib/env.sh"
cargo build --locked -p um-connector --bin um-connector -p um-flood --bin um-faults
"$CARGO_TARGET_DIR/debug/um-faults" --short --check \
  --connector-bin "$CARGO_TARGET_DIR/debug/um-connector"
