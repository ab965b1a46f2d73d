#!/usr/bin/env bash
# The end-to-end scenario: a real control plane, real RabbitMQ and Redis,
# the chart installed with helm, the operator and the connectors run as Pods
# by the process runner, the Genesys Cloud and Telegram simulators outside.
#
#   e2e/scenario/telegram-genesys.sh          assert every step (CI stage 60)
#   e2e/scenario/telegram-genesys.sh --demo   narrate it and keep it running
#
# Steps: helm install -> kubectl apply a Telegram + Genesys Cloud Tenant ->
# Ready, webhook URL in status, integration at the Genesys simulator -> a
# guest message through the ingress reaches Genesys -> an agent reply reaches
# Telegram, its receipt reaches Genesys -> an invalid Tenant is refused, a
# Tenant with a missing Secret says which -> kubectl delete tenant deletes
# the integration and garbage-collects the connectors.
set -euo pipefail
[ "${1:-}" = --demo ] && export UM_SCENARIO_MODE=demo
source "$(dirname "$0")/lib.sh"
scenario_outer "$0" both

# ---- inside the cluster -----------------------------------------------------
cd "$repo"
sim=$UM_SIM_BOTH
ns=shop
bot_token="123456:scenario-bot-token"
client_id="scenario-client"
client_secret="scenario-client-secret"
webhook_token="scenario-webhook-token-0123456789"
guest_id=4242

sim_post() { post "$sim$1" "$2"; }

install_chart "$sim" telegram="$sim"

say "Registering the bot at the Telegram simulator and the OAuth client at the Genesys simulator"
sim_post /__sim/telegram/bots "{\"token\":\"$bot_token\"}" >/dev/null
sim_post /__sim/genesys/clients "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\"}" >/dev/null

tenant_manifest() { # name bot-secret-name
  cat <<YAML
apiVersion: messaging.universal-messaging.io/v1alpha1
kind: Tenant
metadata: {name: $1, namespace: $ns}
spec:
  displayName: ACME Telegram
  cx:
    genesysCloud:
      region: eu-west-1
      oauthClient:
        clientId: $client_id
        clientSecret: {name: genesys-cloud, key: clientSecret}
      integration:
        name: UM $1
        webhookToken: {name: genesys-cloud, key: webhookToken}
      customData: {brand: acme}
  messaging:
    telegram:
      botToken: {name: $2, key: botToken}
YAML
}

say "kubectl apply: Secrets and a Telegram + Genesys Cloud Tenant"
kubectl -n "$ns" create secret generic genesys-cloud \
  --from-literal=clientSecret="$client_secret" --from-literal=webhookToken="$webhook_token" >/dev/null
kubectl -n "$ns" create secret generic acme-telegram --from-literal=botToken="$bot_token" >/dev/null
tenant_manifest acme acme-telegram | kubectl apply -f - >/dev/null

wait_ready acme
webhook_url=$(tenant_status acme webhookUrl)
integration_id=$(tenant_status acme integrationId)
[ "$webhook_url" = "$UM_INGRESS_URL/telegram/$ns.acme" ] || fail "webhook URL in status: $webhook_url"
[ -n "$integration_id" ] || fail "no integration id in status"
integration_registered "$sim" "$integration_id"
[ "$mode" = demo ] && kubectl -n "$ns" get tenants

say "Waiting for the Telegram connector to register its webhook (setWebhook)"
deadline=$(( $(date +%s) + 120 ))
until [ "$(curl -fsS "$sim/bot$bot_token/getWebhookInfo" | jqget "d['result']['url']")" = "$webhook_url" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "setWebhook not called with $webhook_url"
  sleep 0.5
done

say "Guest -> agent: a Telegram message through the ingress to Genesys Cloud"
status=$(sim_post /__sim/telegram/update \
  "{\"token\":\"$bot_token\",\"from\":{\"id\":$guest_id,\"first_name\":\"Ana\"},\"text\":\"Hello, I need help with my order\"}" \
  | jqget "d['delivered']")
[ "$status" = True ] || fail "the connector did not accept the guest update"
sim_wait "$sim/__sim" inbound 1 30
inbound=$(curl -fsS "$sim/__sim/records?kind=inbound")
[ "$(jqget "d[0]['body']['text']" <<<"$inbound")" = "Hello, I need help with my order" ] || fail "inbound text: $inbound"
[ "$(jqget "d[0]['body']['channel']['metadata']['customAttributes']['media']" <<<"$inbound")" = Telegram ] \
  || fail "custom attribute media: $inbound"
[ "$mode" = demo ] && jqget "d[0]['body']" <<<"$inbound"

say "Agent -> guest: a Genesys agent reply through the ingress to Telegram"
sim_post /__sim/genesys/agent-message \
  "{\"integration_id\":\"$integration_id\",\"to\":\"$guest_id\",\"text\":\"Hi Ana, let me check that for you.\"}" >/dev/null
sim_wait "$sim/__sim" sent 1 30
sent=$(curl -fsS "$sim/__sim/records?kind=sent")
[ "$(jqget "d[0]['message']['text']" <<<"$sent")" = "Hi Ana, let me check that for you." ] || fail "sent text: $sent"
sim_wait "$sim/__sim" receipts 1 30
[ "$(curl -fsS "$sim/__sim/records?kind=receipts" | jqget "d[0]['body']['status']")" = Delivered ] \
  || fail "receipt: $(curl -fsS "$sim/__sim/records?kind=receipts")"
[ "$mode" = demo ] && jqget "d[0]['message']" <<<"$sent"

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
kubectl -n "$ns" delete tenant lost --wait=true >/dev/null

if [ "$mode" = demo ]; then
  hold=${UM_DEMO_HOLD:-600}
  cat >&2 <<TXT

The system is running. For the next $hold s (Ctrl-C to stop earlier):
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get tenants -A; kubectl -n $ns get deploy,svc,ingress,secrets
  send a guest message:  curl -X POST $sim/__sim/telegram/update -H 'content-type: application/json' \\
      -d '{"token":"$bot_token","from":{"id":$guest_id,"first_name":"Ana"},"text":"hello"}'
  see Genesys inbound:   curl $sim/__sim/records?kind=inbound
  answer as an agent:    curl -X POST $sim/__sim/genesys/agent-message -H 'content-type: application/json' \\
      -d '{"integration_id":"$integration_id","to":"$guest_id","text":"hi"}'
  see Telegram sends:    curl $sim/__sim/records?kind=sent
  pod logs:              $UM_RUN_DIR/pods/
TXT
  sleep "$hold" || true
fi

say "kubectl delete tenant: the integration is deleted and the connectors are garbage-collected"
kubectl -n "$ns" delete tenant acme --wait=true --timeout=120s >/dev/null || fail "Tenant deletion"
curl -fsS "$sim/__sim/genesys/integrations" | jqget "d['deleted']" | grep -q "$integration_id" \
  || fail "integration $integration_id not deleted at the simulator"
kubectl -n "$ns" wait --for=delete deployment/um-telegram deployment/um-gcloudcx --timeout=120s >/dev/null 2>&1 \
  || fail "connector Deployments not garbage-collected: $(kubectl -n "$ns" get deploy)"
say "Scenario passed"
