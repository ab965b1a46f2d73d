# Viber's official Python SDK (viberbot, installed from PyPI into a venv
# under $UM_CACHE) verifies the simulator's X-Viber-Content-Signature (which
# the connector verifies too, in connectors/tests/flow_viber.rs), parses its
# callbacks, and reads back the connector's send_message bodies (keyboard,
# tracking_data, rich_media).
set -euo pipefail
exec "$(dirname "$0")/../simulators/conformance/viber-sdk.sh"
