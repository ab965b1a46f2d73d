#!/usr/bin/env bash
# The end-to-end scenario: a real control plane, real RabbitMQ and Redis,
# the chart installed with helm, the operator and the connectors run as Pods
# by the process runner, the Genesys Cloud and Telegram simulators outside.
#
#   e2e/scenario/telegram-genesys.sh          assert every step (CI stage 60)
#   e2e/scenario/telegram-genesys.sh --demo   narrate it and keep it running
#
# Steps: helm install (release um in um-system, serving namespaces shop and
# shop-b) -> kubectl apply a Telegram + Genesys Cloud Tenant "acme" in each
# of shop and shop-b (own bot, own webhook token; the namespaces hold only
# those Secrets) -> both Ready, webhook URLs in status, two integrations at
# the Genesys simulator, one data plane (connectors, Ingress, configuration
# Secrets) in um-system -> a guest of each sends a message through the
# ingress and reaches only its own integration -> each integration's agent
# reply reaches only its own bot, receipts only its own integration -> an
# invalid Tenant is refused, a Tenant with a missing Secret says which -> a
# second installation (release um2 in um2-system, serving shop-second, same
# cluster, broker and Redis, its own ingress host) gets its Tenant Ready and
# carries a conversation, the first's data plane untouched -> kubectl delete
# tenant deletes the integration and the Tenant's configuration; with the
# last Tenant of an installation its data plane leaves its namespace.
set -euo pipefail
[ "${1:-}" = --demo ] && export UM_SCENARIO_MODE=demo
source "$(dirname "$0")/lib.sh"
scenario_outer "$0" both

# ---- inside the cluster -----------------------------------------------------
cd "$repo"
sim=$UM_SIM_BOTH
ns=shop
ns_b=shop-b
ns_second=shop-second
home=um-system
home_second=um2-system
client_id="scenario-client"
client_secret="scenario-client-secret"
guest_id=4242
# Per Tenant namespace: its bot token and its Genesys webhook token.
declare -A bot_token=([shop]="123456:scenario-bot-token" [shop-b]="223344:scenario-bot-token-b"
  [shop-second]="333444:scenario-bot-token-second")
declare -A webhook_token=([shop]="scenario-webhook-token-0123456789" [shop-b]="scenario-webhook-token-b-987654321"
  [shop-second]="scenario-webhook-token-second-5555")
declare -A integration_id=()

sim_post() { post "$sim$1" "$2"; }
records() { curl -fsS "$sim/__sim/records?kind=$1"; }

install_chart --watch "$ns,$ns_b" "$sim" telegram="$sim"
instance=$(instance_of "$home" um)
[ -n "$instance" ] || fail "no instance in the operator configuration of release um"

say "Registering the bots at the Telegram simulator and the OAuth client at the Genesys simulator"
for tns in "$ns" "$ns_b" "$ns_second"; do
  sim_post /__sim/telegram/bots "{\"token\":\"${bot_token[$tns]}\"}" >/dev/null
done
sim_post /__sim/genesys/clients "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\"}" >/dev/null

tenant_manifest() { # name bot-secret-name [namespace]
  cat <<YAML
apiVersion: messaging.universal-messaging.io/v1alpha1
kind: Tenant
metadata: {name: $1, namespace: ${3:-$ns}}
spec:
  displayName: ACME Telegram
  cx:
    genesysCloud:
      region: eu-west-1
      oauthClient:
        clientId: $client_id
        clientSecret: {name: genesys-cloud, key: clientSecret}
      integration:
        name: UM ${3:-$ns} $1
        webhookToken: {name: genesys-cloud, key: webhookToken}
      customData: {brand: acme}
  messaging:
    telegram:
      botToken: {name: $2, key: botToken}
YAML
}

# apply_tenant NS: the business's Secrets and Tenant "acme" in namespace NS.
apply_tenant() {
  local tns=$1
  kubectl -n "$tns" create secret generic genesys-cloud \
    --from-literal=clientSecret="$client_secret" --from-literal=webhookToken="${webhook_token[$tns]}" >/dev/null
  kubectl -n "$tns" create secret generic acme-telegram --from-literal=botToken="${bot_token[$tns]}" >/dev/null
  tenant_manifest acme acme-telegram "$tns" | kubectl apply -f - >/dev/null
}

# ready_tenant NS API_ROOT: acme of NS is Ready with its webhook URL and a
# registered integration, and its bot's webhook is set.
ready_tenant() {
  local tns=$1 api_root=$2
  wait_ready acme "$tns"
  local url id
  url=$(tenant_status acme webhookUrl "$tns")
  id=$(tenant_status acme integrationId "$tns")
  [ "$url" = "$api_root/telegram/$tns.acme" ] || fail "webhook URL of $tns/acme: $url"
  [ -n "$id" ] || fail "no integration id in the status of $tns/acme"
  integration_registered "$sim" "$id"
  integration_id[$tns]=$id
  webhook_set() { [ "$(curl -fsS "$sim/bot${bot_token[$tns]}/getWebhookInfo" | jqget "d['result']['url']")" = "$url" ]; }
  poll 120 "the Telegram connector did not register the webhook of $tns/acme ($url)" webhook_set
}

# guest_says NS TEXT: a guest message to the bot of NS, through the ingress.
guest_says() {
  local delivered
  delivered=$(sim_post /__sim/telegram/update \
    "{\"token\":\"${bot_token[$1]}\",\"from\":{\"id\":$guest_id,\"first_name\":\"Ana\"},\"text\":\"$2\"}" | jqget "d['delivered']")
  [ "$delivered" = True ] || fail "the connector did not accept the guest update to the bot of $1"
}

# agent_says NS TEXT: an agent reply through the integration of NS.
agent_says() {
  local delivered
  delivered=$(sim_post /__sim/genesys/agent-message \
    "{\"integration_id\":\"${integration_id[$1]}\",\"to\":\"$guest_id\",\"text\":\"$2\"}" | jqget "d['delivered']")
  [ "$delivered" = True ] || fail "the agent message of $1's integration was not delivered to its webhook"
}

# by_integration KIND: "<namespace> <text>" per Genesys record of KIND,
# the namespace found from the record's integration id.
by_integration() {
  local map="" tns
  for tns in "${!integration_id[@]}"; do map+="${integration_id[$tns]}=$tns "; done
  records "$1" | python3 -c '
import json, sys
names = dict(pair.split("=") for pair in sys.argv[1].split())
for r in json.load(sys.stdin):
    body = r["body"]
    print(names.get(r["integrationId"], "unknown-integration"), body.get("text") or body.get("status"))' "$map" | sort
}

# by_bot: "<namespace> <text>" per message a bot sent, the namespace found
# from the bot's token (never printed).
by_bot() {
  local map="" tns
  for tns in "${!bot_token[@]}"; do map+="${bot_token[$tns]}=$tns "; done
  curl -fsS "$sim/__sim/records?kind=sent" | python3 -c '
import json, sys
names = {}
for pair in sys.argv[1].split():
    token, _, name = pair.rpartition("=")
    names[token] = name
for r in json.load(sys.stdin):
    print(names.get(r["token"], "unknown-bot"), r["chat_id"], r["message"].get("text"))' "$map" | sort
}

expect() { # DESCRIPTION ACTUAL EXPECTED
  [ "$2" = "$3" ] || fail "$1: got [$(echo $2)], expected [$(echo $3)]"
}

say "kubectl apply: the business's Secrets and a Telegram + Genesys Cloud Tenant acme in each of $ns and $ns_b"
apply_tenant "$ns"
apply_tenant "$ns_b"
ready_tenant "$ns" "$UM_INGRESS_URL"
ready_tenant "$ns_b" "$UM_INGRESS_URL"
[ "${integration_id[$ns]}" != "${integration_id[$ns_b]}" ] || fail "the two Tenants share one integration"
[ "$mode" = demo ] && kubectl get tenants -A

say "One data plane in $home serves both namespaces; they hold only the business's Secrets"
check_data_plane "$home" "$instance" telegram gcloudcx
for tns in "$ns" "$ns_b"; do
  tenant_namespace_clean "$tns" acme-telegram genesys-cloud
  expect "configuration Secrets of $tns/acme" "$(tenant_parts "$home" "$instance" "$tns" acme | cut -d' ' -f1)" \
    "$(printf 'gcloudcx\ntelegram')"
done
[ "$mode" = demo ] && kubectl -n "$home" get deploy,svc,ingress,secrets

say "Guest -> agent: a guest of each namespace writes to its own bot; each message reaches only its own integration"
post "$sim/__sim/clear" '{}' >/dev/null
guest_says "$ns" "Hello from $ns, I need help with my order"
guest_says "$ns_b" "Hello from $ns_b, where is my parcel"
sim_wait "$sim/__sim" inbound 2 30
expect "inbound messages by integration" "$(by_integration inbound)" \
  "$(printf '%s\n' "$ns Hello from $ns, I need help with my order" "$ns_b Hello from $ns_b, where is my parcel" | sort)"
inbound=$(records inbound)
[ "$(jqget "sorted(set(r['body']['channel']['metadata']['customAttributes']['media'] for r in d))" <<<"$inbound")" = "['Telegram']" ] \
  || fail "custom attribute media: $(jqget "[r['body']['channel']['metadata'] for r in d]" <<<"$inbound")"
[ "$mode" = demo ] && jqget "d[0]['body']" <<<"$inbound"

say "Agent -> guest: each integration's agent reply reaches only its own bot; receipts only their integration"
agent_says "$ns" "Hi Ana, let me check that for you."
agent_says "$ns_b" "Hi Ana, your parcel is on its way."
sim_wait "$sim/__sim" sent 2 30
expect "messages sent by bot" "$(by_bot)" \
  "$(printf '%s\n' "$ns $guest_id Hi Ana, let me check that for you." "$ns_b $guest_id Hi Ana, your parcel is on its way." | sort)"
sim_wait "$sim/__sim" receipts 2 30
expect "receipts by integration" "$(by_integration receipts)" "$(printf '%s\n' "$ns Delivered" "$ns_b Delivered" | sort)"
[ "$mode" = demo ] && by_bot

say "An invalid Tenant (two platforms) is refused by the apiserver"
if out=$({ tenant_manifest bad acme-telegram; printf '    viber:\n      authToken: {name: "viber", key: "authToken"}\n      senderName: "ACME"\n'; } \
      | kubectl apply -f - 2>&1); then
  fail "a Tenant with two platforms was accepted"
fi
grep -q "spec.messaging" <<<"$out" && grep -q "set only one messaging platform" <<<"$out" && grep -q "viber" <<<"$out" \
  || fail "refusal does not say spec.messaging has two platforms: $out"
[ "$mode" = demo ] && echo "$out" >&2

say "A Tenant whose Secret is missing says which"
tenant_manifest lost no-such-secret | kubectl apply -f - >/dev/null
deadline=$(( $(date +%s) + 60 ))
until kubectl -n "$ns" get tenant lost -o jsonpath='{.status.conditions[?(@.type=="CredentialsResolved")].message}' \
      | grep -q no-such-secret; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "CredentialsResolved does not name the missing Secret: $(kubectl -n "$ns" get tenant lost -o jsonpath='{.status.conditions}')"
  sleep 0.5
done
[ "$mode" = demo ] && kubectl -n "$ns" get tenant lost -o jsonpath='{.status.conditions[?(@.type=="CredentialsResolved")].message}{"\n"}'
kubectl -n "$ns" delete tenant lost --wait=true --timeout=120s >/dev/null || fail "deleting Tenant lost"

say "A second installation beside the first: release um2 in $home_second serving $ns_second, same cluster, broker and Redis"
# Its own ingress host (localhost, the first's rules are host-less on
# 127.0.0.1), so both data planes answer /telegram and /openmessaging.
api_root_second=${UM_INGRESS_URL/127.0.0.1/localhost}
[ "$api_root_second" != "$UM_INGRESS_URL" ] || fail "UM_INGRESS_URL is not on 127.0.0.1: $UM_INGRESS_URL"
first_plane=$(data_plane "$home" "$instance")
install_chart --release um2 --namespace "$home_second" --watch "$ns_second" --api-root "$api_root_second" --no-crds \
  "$sim" telegram="$sim"
instance_second=$(instance_of "$home_second" um2)
[ -n "$instance_second" ] && [ "$instance_second" != "$instance" ] || fail "the second installation's instance is '$instance_second'"
apply_tenant "$ns_second"
ready_tenant "$ns_second" "$api_root_second"
check_data_plane "$home_second" "$instance_second" telegram gcloudcx
tenant_namespace_clean "$ns_second" acme-telegram genesys-cloud
expect "configuration Secrets of $ns_second/acme" "$(tenant_parts "$home_second" "$instance_second" "$ns_second" acme | cut -d' ' -f1)" \
  "$(printf 'gcloudcx\ntelegram')"
[ -z "$(tenant_parts "$home" "$instance" "$ns_second" acme)" ] || fail "the first installation wrote configuration for $ns_second/acme"
expect "the first installation's data plane after the second install" "$(data_plane "$home" "$instance")" "$first_plane"
post "$sim/__sim/clear" '{}' >/dev/null
guest_says "$ns_second" "Hello from $ns_second"
sim_wait "$sim/__sim" inbound 1 30
agent_says "$ns_second" "Hi Ana, from the second installation."
sim_wait "$sim/__sim" sent 1 30
sim_wait "$sim/__sim" receipts 1 30
expect "inbound messages by integration (second installation)" "$(by_integration inbound)" "$ns_second Hello from $ns_second"
expect "messages sent by bot (second installation)" "$(by_bot)" "$ns_second $guest_id Hi Ana, from the second installation."
expect "receipts by integration (second installation)" "$(by_integration receipts)" "$ns_second Delivered"
[ "$mode" = demo ] && kubectl get tenants -A

if [ "$mode" = demo ]; then
  hold=${UM_DEMO_HOLD:-600}
  cat >&2 <<TXT

The system is running. For the next $hold s (Ctrl-C to stop earlier):
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get tenants -A; kubectl -n $home get deploy,svc,ingress,secrets; kubectl -n $ns get secrets
  send a guest message:  curl -X POST $sim/__sim/telegram/update -H 'content-type: application/json' \\
      -d '{"token":"${bot_token[$ns]}","from":{"id":$guest_id,"first_name":"Ana"},"text":"hello"}'
  see Genesys inbound:   curl $sim/__sim/records?kind=inbound
  answer as an agent:    curl -X POST $sim/__sim/genesys/agent-message -H 'content-type: application/json' \\
      -d '{"integration_id":"${integration_id[$ns]}","to":"$guest_id","text":"hi"}'
  see Telegram sends:    curl $sim/__sim/records?kind=sent
  pod logs:              $UM_RUN_DIR/pods/
TXT
  sleep "$hold" || true
fi

# delete_tenant NS RELEASE_NS INSTANCE: its integration is deleted at the
# simulator and its configuration Secrets with it (the finalizer).
delete_tenant() {
  local tns=$1 release_ns=$2 inst=$3
  kubectl -n "$tns" delete tenant acme --wait=true --timeout=120s >/dev/null || fail "deleting Tenant $tns/acme"
  integration_deleted "$sim" "${integration_id[$tns]}"
  [ -z "$(tenant_parts "$release_ns" "$inst" "$tns" acme)" ] \
    || fail "the configuration Secrets of $tns/acme outlived it: $(tenant_parts "$release_ns" "$inst" "$tns" acme | cut -d' ' -f1)"
}

say "kubectl delete tenant: the integration and the Tenant's configuration are deleted; the connectors stay for the other Tenant"
delete_tenant "$ns" "$home" "$instance"
check_data_plane "$home" "$instance" telegram gcloudcx
wait_ready acme "$ns_b"

say "The last Tenant of the first installation is deleted: its data plane leaves $home; the second's stays"
delete_tenant "$ns_b" "$home" "$instance"
wait_data_plane_gone "$home" "$instance"
check_data_plane "$home_second" "$instance_second" telegram gcloudcx
wait_ready acme "$ns_second"

say "The second installation's last Tenant is deleted: its data plane leaves $home_second"
delete_tenant "$ns_second" "$home_second" "$instance_second"
wait_data_plane_gone "$home_second" "$instance_second"
say "Scenario passed"
