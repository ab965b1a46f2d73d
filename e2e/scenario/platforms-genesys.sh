#!/usr/bin/env bash
# The platform scenario (CI stage 60): one local control plane, the chart
# installed with helm, and for each of LINE, Viber, Microsoft Teams and
# Slack its sample Tenant (config/samples/tenants/<platform>.yaml, with the
# simulators' credentials filled in) applied next to the others in one
# namespace. Each must become Ready and carry a conversation end to end:
#
#   guest text and image -> Genesys Cloud (custom attributes, media URL that
#   serves the same bytes and carries no credential) -> agent text, image
#   and quick replies -> the platform's native message and widgets -> the
#   guest's tap -> a Genesys structured response; Delivered receipts;
#   a redelivered event reaches Genesys once (where the simulator can
#   redeliver on demand); a webhook with a tampered signature is refused
#   with 401.
#
# One data plane (connectors, Ingress, configuration Secrets) in the release
# namespace um-system serves them all; namespace shop holds only the
# business's Secrets; deleting the Tenants deletes their integrations and
# configuration, then the data plane.
#
#   e2e/scenario/platforms-genesys.sh                  every platform
#   UM_SCENARIO_PLATFORMS="line viber" e2e/scenario/platforms-genesys.sh
#
# Per-platform steps live in e2e/scenario/platforms/<platform>.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
platforms=${UM_SCENARIO_PLATFORMS:-line viber teams slack}
modes=(genesys)
for p in $platforms; do modes+=("$p"); done
scenario_outer "$0" "${modes[@]}"

# ---- inside the cluster -----------------------------------------------------
cd "$repo"
ns=shop
genesys=$UM_SIM_GENESYS
client_id="scenario-client"
client_secret="scenario-client-secret"
webhook_token="scenario-webhook-token-0123456789"
work=$UM_RUN_DIR/scenario
mkdir -p "$work/cdn"

# The agent's attachments live on Genesys Cloud's content host; a static
# file server on loopback stands in for it (bounded by the cluster TTL).
python3 - "$work/cdn/agent-photo.png" "$work/guest-photo.png" <<'PY'
import struct, sys, zlib
def png(seed, w=64, h=48):
    rows = b"".join(b"\0" + bytes((x * seed + y * 7) % 256 for x in range(w * 3)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png(3))
open(sys.argv[2], "wb").write(png(5))
PY
timeout "${UM_CLUSTER_TTL:-3600}" python3 -m http.server 0 --bind 127.0.0.1 --directory "$work/cdn" \
  >"$work/cdn.log" 2>&1 &
cdn_pid=$!
trap 'kill $cdn_pid 2>/dev/null || true' EXIT
poll 10 "the attachment host did not start: $(cat "$work/cdn.log")" grep -q 'port [0-9]' "$work/cdn.log"
cdn="http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/cdn.log" | head -1)"
agent_image_url="$cdn/agent-photo.png"
guest_image="$work/guest-photo.png"
guest_image_sha=$(sha256sum "$guest_image" | cut -d' ' -f1)

chart_sets=()
for p in $platforms; do
  var="UM_SIM_${p^^}"
  chart_sets+=("$p=${!var}")
done
# The stand-in for Genesys' content host is on loopback, which connectors
# refuse to fetch from unless told (serviceDefaults.fetchAllow).
install_chart --fetch-allow 127.0.0.1 "$genesys" "${chart_sets[@]}"
home=um-system
instance=$(instance_of "$home" um)
[ -n "$instance" ] || fail "no instance in the operator configuration of release um"
# The Tenants' namespace: only the business's Secrets and Tenants (the
# broker and Redis Secrets stay in $home, where the connectors run).
kubectl create namespace "$ns" >/dev/null

say "Registering the OAuth client at the Genesys Cloud simulator"
post "$genesys/__sim/genesys/clients" "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\"}" >/dev/null
kubectl -n "$ns" create secret generic genesys-cloud \
  --from-literal=clientSecret="$client_secret" --from-literal=webhookToken="$webhook_token" >/dev/null

genesys_records() { curl -fsS "$genesys/__sim/records?kind=$1"; }
genesys_wait() { sim_wait "$genesys/__sim" "$@"; }

# apply_sample PLATFORM SED-SCRIPT: the sample Tenant and its Secret, with
# the scenario's Genesys client and the simulator's credentials.
apply_sample() {
  sed -e "s/00000000-0000-0000-0000-000000000000/$client_id/" -e "$2" \
    "config/samples/tenants/$1.yaml" >"$work/$1.yaml"
  grep -q REPLACE "$work/$1.yaml" && fail "sample $1 still has REPLACE values: $(grep REPLACE "$work/$1.yaml")"
  kubectl -n "$ns" apply -f "$work/$1.yaml" >/dev/null || fail "kubectl apply the $1 sample"
}

# conversation PLATFORM: the steps every platform shares; p_* come from
# e2e/scenario/platforms/<platform>.sh.
conversation() {
  local p=$1 tenant="acme-$1"
  unset -f p_prepare p_webhook_ready p_guest_text p_redelivered_text p_guest_image p_check_sent \
    p_tap_quick_reply p_tampered_webhook p_extra_checks
  source "$repo/e2e/scenario/platforms/$p.sh"
  local sim_var="UM_SIM_${p^^}"
  psim=${!sim_var}

  say "[$p] Registering the bot at the $p simulator and applying the sample Tenant"
  p_prepare
  apply_sample "$p" "$p_sample_sed"
  wait_ready "$tenant"
  webhook_url=$(tenant_status "$tenant" webhookUrl)
  local integration_id
  integration_id=$(tenant_status "$tenant" integrationId)
  [ "$webhook_url" = "$UM_INGRESS_URL/$p/$ns.$tenant" ] || fail "[$p] webhook URL in status: $webhook_url"
  [ -n "$integration_id" ] || fail "[$p] no integration id in status"
  integration_registered "$genesys" "$integration_id"
  poll 120 "[$p] the platform does not know the webhook $webhook_url" p_webhook_ready
  post "$genesys/__sim/clear" '{}' >/dev/null

  say "[$p] Guest -> agent: text and an image"
  p_guest_text "Hello from $p, I need help with my order"
  genesys_wait inbound 1 30
  local inbound
  inbound=$(genesys_records inbound)
  [ "$(jqget "d[0]['body']['text']" <<<"$inbound")" = "Hello from $p, I need help with my order" ] \
    || fail "[$p] inbound text: $inbound"
  [ "$(jqget "d[0]['integrationId']" <<<"$inbound")" = "$integration_id" ] || fail "[$p] inbound integration: $inbound"
  [ "$(jqget "d[0]['body']['channel']['metadata']['customAttributes']['media']" <<<"$inbound")" = "$p_media" ] \
    || fail "[$p] custom attribute media: $inbound"
  guest_id=$(jqget "d[0]['body']['channel']['from']['id']" <<<"$inbound")
  if declare -F p_redelivered_text >/dev/null; then
    # The platform sends the same event again (same event id): accepted,
    # not published twice; the image below must be the second message.
    p_redelivered_text "Hello from $p, I need help with my order"
  fi

  p_guest_image "$guest_image"
  genesys_wait inbound 2 30
  inbound=$(genesys_records inbound)
  local attachment media_url
  attachment=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[1]["body"]["content"][0]["attachment"]))' <<<"$inbound") \
    || fail "[$p] the second inbound message has no attachment: $inbound"
  [ "$(jqget "d['mediaType']" <<<"$attachment")" = Image ] || fail "[$p] inbound attachment: $attachment"
  media_url=$(jqget "d['url']" <<<"$attachment")
  case "$media_url" in "$webhook_url/media/"*) ;; *) fail "[$p] media URL is not the connector's signed URL: $media_url" ;; esac
  for secret in $p_secrets; do
    case "$media_url" in *"$secret"*) fail "[$p] media URL carries a credential: $media_url" ;; esac
  done
  [ "$(curl -fsS "$media_url" | sha256sum | cut -d' ' -f1)" = "$guest_image_sha" ] \
    || fail "[$p] the media URL does not serve the guest's image"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${media_url%%sig=*}sig=00")" = 401 ] \
    || fail "[$p] a media URL with a wrong signature is served"

  say "[$p] Agent -> guest: text, an image and quick replies"
  agent() { post "$genesys/__sim/genesys/agent-message" "{\"integration_id\":\"$integration_id\",\"to\":\"$guest_id\",$1}" >/dev/null; }
  agent '"text":"Hi, let me check that for you."'
  agent "\"attachment\":{\"mediaType\":\"Image\",\"url\":\"$agent_image_url\",\"mime\":\"image/png\",\"filename\":\"photo.png\"}"
  agent '"text":"Did that help?","quick_replies":[["Yes","help-yes"],["No","help-no"]]'
  p_check_sent "Hi, let me check that for you." "$agent_image_url" "Did that help?" Yes No
  genesys_wait receipts 3 30
  local statuses
  statuses=$(genesys_records receipts | jqget "sorted(set(r['body']['status'] for r in d))")
  [ "$statuses" = "['Delivered']" ] || fail "[$p] receipts: $(genesys_records receipts)"

  say "[$p] The guest taps a quick reply: a structured response"
  p_tap_quick_reply Yes help-yes
  genesys_wait structured 1 30
  local response
  response=$(genesys_records structured)
  [ "$(jqget "d[0]['body']['buttonResponse']['payload']" <<<"$response")" = help-yes ] \
    || fail "[$p] structured response: $response"
  [ "$(jqget "d[0]['body']['buttonResponse']['type']" <<<"$response")" = QuickReply ] \
    || fail "[$p] structured response type: $response"

  say "[$p] A webhook with a tampered signature is refused"
  local code
  code=$(p_tampered_webhook)
  [ "$code" = 401 ] || fail "[$p] tampered webhook answered $code, not 401"
  [ "$(genesys_records inbound | jqget 'len(d)')" = 2 ] || fail "[$p] something was published after a refused webhook"

  if declare -F p_extra_checks >/dev/null; then
    say "[$p] Platform-specific checks"
    p_extra_checks
  fi
}

for p in $platforms; do conversation "$p"; done
[ "$mode" = demo ] && kubectl -n "$ns" get tenants

say "One data plane in $home serves every platform; $ns holds only the business's Secrets"
check_data_plane "$home" "$instance" gcloudcx $platforms
business_secrets=(genesys-cloud)
for p in $platforms; do
  business_secrets+=("acme-$p")
  [ "$(tenant_parts "$home" "$instance" "$ns" "acme-$p" | cut -d' ' -f1 | tr '\n' ' ')" = "gcloudcx $p " ] \
    || fail "[$p] configuration Secrets: $(tenant_parts "$home" "$instance" "$ns" "acme-$p" | cut -d' ' -f1 | tr '\n' ' ')"
done
tenant_namespace_clean "$ns" "${business_secrets[@]}"

say "kubectl delete tenants: integrations and configuration deleted, then the data plane leaves $home"
ids=$(for p in $platforms; do tenant_status "acme-$p" integrationId; echo; done)
kubectl -n "$ns" delete tenants --all --wait=true --timeout=120s >/dev/null || fail "Tenant deletion"
for id in $ids; do integration_deleted "$genesys" "$id"; done
for p in $platforms; do
  [ -z "$(tenant_parts "$home" "$instance" "$ns" "acme-$p")" ] || fail "[$p] the Tenant's configuration Secrets outlived it"
done
wait_data_plane_gone "$home" "$instance"
say "Platform scenario passed: $platforms"
