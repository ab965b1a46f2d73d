# Slack's official Python SDK (slack-sdk, installed from PyPI into a venv
# under $UM_CACHE): its SignatureVerifier signs requests the connector's
# verification accepts (and refuses tampered), verifies the simulator's
# signatures, and its Block Kit models parse and validate the blocks the
# connector builds (quick replies, carousel, image).
set -euo pipefail
exec "$(dirname "$0")/../simulators/conformance/slack-sdk.sh"
