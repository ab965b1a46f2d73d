# The end-to-end scenarios (README), each on its own local control plane:
# Telegram — helm install, Tenant applied, a guest message and an agent
# reply across the whole system, refusals, Tenant deleted; then LINE,
# Viber, Microsoft Teams and Slack — their sample Tenants Ready side by side
# and a conversation with text, image and quick reply on each.
set -euo pipefail
here=$(dirname "$0")/../scenario
bash "$here/telegram-genesys.sh"
bash "$here/platforms-genesys.sh"
