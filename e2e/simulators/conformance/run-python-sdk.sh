#!/usr/bin/env bash
# Checks the Genesys simulator against the official Python SDK
# (PureCloudPlatformClientV2 from PyPI): builds um-sim, starts it with one
# OAuth client, runs genesys_python_sdk.py against it, stops it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib/env.sh"

venv="$UM_CACHE/venv-genesys-sdk"
if [ ! -x "$venv/bin/python" ]; then
  um_log "creating $venv with PureCloudPlatformClientV2"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q PureCloudPlatformClientV2
fi

cargo build -q -p um-simulators --bin um-sim
work="$(mktemp -d)"
trap 'kill "${sim_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/config.json" <<JSON
{"genesys": {"oauth_clients": {"sdk-client": "sdk-secret"}}}
JSON
"$CARGO_TARGET_DIR/debug/um-sim" genesys --listen 127.0.0.1:0 --ttl 300 \
  --port-file "$work/port" --config "$work/config.json" &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || um_die "um-sim did not start"
port="$(cat "$work/port")"
"$venv/bin/python" "$here/genesys_python_sdk.py" "http://127.0.0.1:$port" sdk-client sdk-secret \
  "https://bridge.example.test/openmessaging/demo"
