#!/usr/bin/env bash
# Checks Viber signatures and payloads against Viber's official Python SDK
# (viberbot from PyPI, in a venv under $UM_CACHE): the flow_viber test
# writes callbacks signed by the simulator (which the connector verifies)
# and send bodies built by the connector; viber-sdk.py verifies and parses
# them with the SDK.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib/env.sh"

venv="$UM_CACHE/venv-viber-sdk"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import viberbot' 2>/dev/null; then
  um_log "creating $venv with viberbot"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'viberbot==1.0.12'
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
UM_VIBER_SDK_FIXTURE="$work/fixture.json" cargo test -q -p um-connector --test flow_viber \
  sdk_fixture_of_signed_callbacks_and_send_bodies
[ -s "$work/fixture.json" ] || um_die "the flow_viber test wrote no fixture"
"$venv/bin/python" "$here/viber-sdk.py" "$work/fixture.json"
