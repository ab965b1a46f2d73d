#!/usr/bin/env bash
# Checks the LINE simulator against LINE's official Python SDK
# (line-bot-sdk from PyPI): builds um-sim, starts it in `line` mode with
# one channel, runs line-sdk.py against it, stops it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib/env.sh"

venv="$UM_CACHE/venv-line-sdk"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import linebot.v3' 2>/dev/null; then
  um_log "creating $venv with line-bot-sdk"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'line-bot-sdk>=3,<4'
fi

cargo build -q -p um-simulators --bin um-sim
work="$(mktemp -d)"
trap 'kill "${sim_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
channel_id=1650000042
secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
token="sdk-token-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
cat > "$work/config.json" <<JSON
{"line": {"channels": [{"channel_id": "$channel_id", "channel_secret": "$secret",
                        "access_token": "$token"}],
          "redelivery": {"max_attempts": 1}}}
JSON
"$CARGO_TARGET_DIR/debug/um-sim" line --listen 127.0.0.1:0 --ttl 300 \
  --port-file "$work/port" --config "$work/config.json" &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || um_die "um-sim did not start"
port="$(cat "$work/port")"
"$venv/bin/python" "$here/line-sdk.py" "http://127.0.0.1:$port" "$channel_id" "$secret" "$token"
