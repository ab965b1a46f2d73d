#!/usr/bin/env bash
# Checks Slack request signing and Block Kit against Slack's official Python
# SDK (slack-sdk from PyPI, in a venv under $UM_CACHE): the SDK signs
# requests that the connector's verification must accept, verifies the
# simulator's signatures, and parses the connector's Block Kit blocks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib/env.sh"

venv="$UM_CACHE/venv-slack-sdk"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import slack_sdk' 2>/dev/null; then
  um_log "creating $venv with slack-sdk"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'slack-sdk==3.47.0'
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$here/slack-sdk.py" sign "$work/sdk-signed.json"
UM_SLACK_SDK_SIGNED="$work/sdk-signed.json" UM_SLACK_SDK_FIXTURE="$work/fixture.json" \
  cargo test -q -p um-connector --test flow_slack sdk_fixture_round_trip >/dev/null
[ -s "$work/fixture.json" ] || um_die "the flow_slack test wrote no fixture"
"$venv/bin/python" "$here/slack-sdk.py" check "$work/fixture.json"
