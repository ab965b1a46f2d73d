# LINE's official Python SDK (line-bot-sdk, installed from PyPI into a venv
# under $UM_CACHE) parses and verifies the webhooks the LINE simulator signs,
# and drives its reply, push (retry key, 409), profile and content APIs.
# The connector verifies the same simulator's signatures in
# connectors/tests/flow_line.rs, so SDK, simulator and connector agree on
# X-Line-Signature.
set -euo pipefail
exec "$(dirname "$0")/../simulators/conformance/line-sdk.sh"
