# The end-to-end scenarios (README), each on its own local control plane:
# Telegram — helm install, Telegram Tenants in two namespaces served by one
# data plane in the release namespace, a guest of each reaching only its own
# integration and the agent reply only its own bot, refusals, a second
# installation (other release and namespace) beside the first, Tenants
# deleted and the data plane swept; then LINE, Viber, Microsoft Teams and
# Slack — their sample Tenants Ready side by side and a conversation with
# text, image and quick reply on each.
set -euo pipefail
here=$(dirname "$0")/../scenario
bash "$here/telegram-genesys.sh"
bash "$here/platforms-genesys.sh"
