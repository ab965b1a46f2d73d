# Microsoft's Bot Framework Python SDK (botframework-connector, installed
# from PyPI into a venv under $UM_CACHE) validates the activity tokens the
# Teams simulator signs (OpenID metadata, endorsed RS256 keys, issuer,
# audience, expiry, serviceurl) and refuses its forged ones. The connector
# validates the same simulator's tokens in connectors/tests/flow_teams.rs,
# so SDK, simulator and connector agree on Bot Framework authentication.
set -euo pipefail
exec "$(dirname "$0")/../simulators/conformance/teams-sdk.sh"
