# The end-to-end scenario (README): helm install, Tenant applied, a guest
# message and an agent reply across the whole system, Tenant deleted.
set -euo pipefail
exec bash "$(dirname "$0")/../scenario/telegram-genesys.sh"
