#!/usr/bin/env bash
# Checks the Teams simulator against Microsoft's official Bot Framework
# Python SDK (botframework-connector from PyPI, in a venv under $UM_CACHE):
# the Rust test `sdk_validates_the_simulators_tokens` signs activities with
# the simulator (good and forged tokens) and runs teams-sdk.py, whose
# JwtTokenValidation must accept exactly the good ones. The connector
# validates the same simulator's tokens in connectors/tests/flow_teams.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../lib/env.sh"

venv="$UM_CACHE/venv-teams-sdk"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiohttp, botframework.connector.auth' 2>/dev/null; then
  um_log "creating $venv with botframework-connector"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'botframework-connector>=4.16,<5' 'aiohttp>=3.8'
fi

UM_TEAMS_SDK_PYTHON="$venv/bin/python" \
UM_TEAMS_SDK_SCRIPT="$here/teams-sdk.py" \
  cargo test -q -p um-simulators --test teams sdk_validates_the_simulators_tokens -- --nocapture
