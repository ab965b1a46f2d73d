# The custom-resource API against a real kube-apiserver: the generated CRDs
# install and become Established; every sample is accepted; bad manifests are
# refused at apply time with a message that names the field; status, printer
# columns, short names, the category and condition list-map merging work.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/e2e/lib/env.sh"

# Only the apiserver is needed (no Pods run), so the control plane alone is
# started, not with-cluster.sh's process runner and ingress.
if [ "${1:-}" != --in-cluster ]; then
  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/um-crds.XXXXXX")
  stop() {
    local rc=$?
    bash "$repo/e2e/cluster/cluster.sh" down "$run_dir" >/dev/null 2>&1 || true
    if [ "$rc" -eq 0 ]; then rm -rf "$run_dir"; else um_log "run directory kept: $run_dir"; fi
    exit "$rc"
  }
  trap stop EXIT
  UM_CLUSTER_TTL=${UM_CLUSTER_TTL:-900} bash "$repo/e2e/cluster/cluster.sh" up "$run_dir"
  source "$run_dir/cluster.env"
  bash "$0" --in-cluster
  exit
fi

cd "$repo"
API=messaging.universal-messaging.io/v1alpha1
NS=crds-e2e
# Checks run in pipelines (subshells), so failures are counted in a file.
failures_file=$(mktemp)
trap 'rm -f "$failures_file"' EXIT
fail() { um_log "FAIL: $*"; echo x >>"$failures_file"; }

kubectl apply --server-side -k crds/ >/dev/null
# kubectl wait fails at once ("accessor error: <nil>") while a just-created
# CRD has no status.conditions yet, instead of waiting: ask again.
deadline=$(( $(date +%s) + 60 ))
until kubectl wait --for condition=Established --timeout=60s \
  crd/tenants.messaging.universal-messaging.io \
  crd/storages.messaging.universal-messaging.io \
  crd/notifierdestinations.messaging.universal-messaging.io >/dev/null 2>&1; do
  [ "$(date +%s)" -ge "$deadline" ] && um_die "the CRDs did not become Established within 60 s"
  sleep 0.5
done
kubectl create namespace "$NS" >/dev/null

# --- every sample is accepted (server-side dry run, the real validation) ---
samples=0
for file in config/samples/secrets/*.yaml config/samples/tenants/*.yaml \
  config/samples/notifiers/*.yaml config/samples/preview/tenants/*.yaml \
  config/samples/preview/storages/*.yaml; do
  if out=$(kubectl apply -n "$NS" --dry-run=server -f "$file" 2>&1); then
    samples=$((samples + 1))
  else
    fail "sample $file refused: $out"
  fi
done
[ "$samples" -ge 26 ] || fail "only $samples sample files checked"

# --- bad manifests are refused, naming the field ----------------------------
# refused <case> <expected text>... : the manifest on stdin must be refused
# and the apiserver's answer must contain every expected text.
refused() {
  local name=$1; shift
  local manifest out
  manifest=$(cat)
  if out=$(kubectl apply -n "$NS" --dry-run=server -f - <<<"$manifest" 2>&1); then
    fail "$name: accepted, expected a refusal"
    return
  fi
  for expected in "$@"; do
    grep -qF -- "$expected" <<<"$out" || fail "$name: answer lacks \"$expected\": $out"
  done
}

# gc [extra fields] / pc [extra fields]: a valid spec.cx of each kind.
gc() {
  printf '{genesysCloud: {region: eu-west-1, oauthClient: {clientId: c, clientSecret: {name: g, key: s}}, integration: {name: i, webhookToken: {name: g, key: w}}%s}}' "${1:+, $1}"
}
pc() {
  printf '{pureConnect: {primaryUrl: "https://pc.example.com", target: {name: Support, type: Workgroup}%s}}' "${1:+, $1}"
}
GC=$(gc)
TG='{telegram: {botToken: {name: t, key: botToken}}}'
LINE='{channelSecret: {name: l, key: s}, channelId: "1"}'
# tenant <name> <cx> <messaging> [extra spec fields]
tenant() {
  printf 'apiVersion: %s\nkind: Tenant\nmetadata: {name: %s}\nspec: {displayName: Test, cx: %s, messaging: %s%s}\n' \
    "$API" "$1" "$2" "$3" "${4:+, $4}"
}

tenant ok "$GC" "$TG" | kubectl apply -n "$NS" --dry-run=server -f - >/dev/null \
  || fail "the minimal valid Tenant was refused"

tenant two-platforms "$GC" "{telegram: {botToken: {name: t, key: b}}, line: $LINE}" \
  | refused two-platforms "spec.messaging" "set only one messaging platform" "found: telegram line"
tenant no-platform "$GC" "{}" \
  | refused no-platform "spec.messaging: Required value" "set one messaging platform"
tenant no-bot-token "$GC" "{telegram: {}}" \
  | refused no-bot-token "spec.messaging.telegram.botToken: Required value"
tenant inline-token "$GC" '{telegram: {botToken: "123456:ABC-DEF"}}' \
  | refused inline-token "spec.messaging.telegram.botToken" "must be of type object"
tenant bad-region "${GC/eu-west-1/mars-north-1}" "$TG" \
  | refused bad-region "spec.cx.genesysCloud.region: Unsupported value: \"mars-north-1\"" "eusc-de-east-1"
tenant two-cx "{genesysCloud: $(gc | sed 's/^{genesysCloud: //; s/}$//'), pureConnect: $(pc | sed 's/^{pureConnect: //; s/}$//')}" "$TG" \
  | refused two-cx "spec.cx" "set only one contact-center platform" "found: genesysCloud pureConnect"
tenant no-cx "{}" "$TG" \
  | refused no-cx "spec.cx: Required value" "set one contact-center platform"
tenant unknown-field "$GC" '{telegram: {botToken: {name: t, key: b}, tokn: x}}' \
  | refused unknown-field 'unknown field "spec.messaging.telegram.tokn"'
tenant basic-without-password "$GC" "$TG" "apiAuth: {type: basic, username: ivr}" \
  | refused basic-without-password "spec.apiAuth.password: Required value" "required when type is basic"
tenant bad-prefix "$(gc 'commander: {enabled: true, prefix: "a b"}')" "$TG" \
  | refused bad-prefix "spec.cx.genesysCloud.commander.prefix"
tenant maps-without-key "$(gc 'googleMaps: {enabled: true}')" "$TG" \
  | refused maps-without-key "spec.cx.genesysCloud.googleMaps.apiKey: Required value"
tenant icws-without-user "$(pc 'api: icwsWebchat')" "$TG" \
  | refused icws-without-user "spec.cx.pureConnect.icwsPassword: Required value"
tenant bad-secret-name "$GC" '{telegram: {botToken: {name: "Not_A_Name", key: b}}}' \
  | refused bad-secret-name "spec.messaging.telegram.botToken.name"
tenant wechat-safe-without-key "$GC" '{wechat: {appId: wx1, appSecret: {name: w, key: a}, token: {name: w, key: t}, encryptMode: safe}}' \
  | refused wechat-safe-without-key "spec.messaging.wechat.encodingAesKey: Required value"

storage() { printf 'apiVersion: %s\nkind: Storage\nmetadata: {name: %s}\nspec: %s\n' "$API" "$1" "$2"; }
storage s3-without-settings '{type: s3}' \
  | refused s3-without-settings "spec.s3: Required value" "s3 settings are required when type is s3"
storage type-mismatch '{type: gcs, s3: {region: eu-west-1, bucket: abc}}' \
  | refused type-mismatch "spec.gcs: Required value" "spec.s3: Forbidden"
storage negative-purge '{type: gcs, gcs: {bucket: abc}, purgeDelaySeconds: -1}' \
  | refused negative-purge "spec.purgeDelaySeconds"
storage bad-type '{type: ftp}' \
  | refused bad-type "spec.type: Unsupported value: \"ftp\""

notifier() { printf 'apiVersion: %s\nkind: NotifierDestination\nmetadata: {name: %s}\nspec: %s\n' "$API" "$1" "$2"; }
notifier pagerduty-without-key '{type: pagerDuty}' \
  | refused pagerduty-without-key "spec.routingKey: Required value"
notifier slack-without-url '{type: slack, topic: Default}' \
  | refused slack-without-url "spec.url: Required value"
notifier bad-topic '{type: slack, topic: Everything, url: {name: n, key: url}}' \
  | refused bad-topic "spec.topic: Unsupported value"
notifier inline-url '{type: discord, url: "https://discord.com/api/webhooks/1/x"}' \
  | refused inline-url "spec.url" "must be of type object"

# --- defaults, status, printer columns, names --------------------------------
kubectl apply -n "$NS" -f config/samples/secrets/genesys-cloud.yaml -f config/samples/tenants/telegram.yaml >/dev/null
prefix=$(kubectl get tenant acme-telegram -n "$NS" -o jsonpath='{.spec.cx.genesysCloud.googleMaps.enabled}/{.spec.apiAuth.type}')
[ "$prefix" = "false/none" ] || fail "defaults not applied by the apiserver: $prefix"

status='{"status": {"observedGeneration": 1, "platform": "telegram", "cx": "genesysCloud",
  "webhookUrl": "https://um.example.com/telegram/crds-e2e.acme-telegram",
  "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                  "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}'
kubectl patch tenant acme-telegram -n "$NS" --subresource=status --type=merge -p "$status" >/dev/null
table=$(kubectl get tenants -n "$NS")
head -1 <<<"$table" | grep -Eq '^NAME +PLATFORM +CX +READY +WEBHOOK URL +AGE$' \
  || fail "kubectl get tenants header: $(head -1 <<<"$table")"
grep -Eq '^acme-telegram +telegram +genesysCloud +True +https://um.example.com/telegram/crds-e2e.acme-telegram +' <<<"$table" \
  || fail "kubectl get tenants row: $table"
kubectl get umtn -n "$NS" -o name | grep -qx 'tenant.messaging.universal-messaging.io/acme-telegram' \
  || fail "short name umtn does not list the Tenant"
kubectl get universal-messaging -n "$NS" -o name | grep -q 'tenant.messaging.universal-messaging.io/acme-telegram' \
  || fail "category universal-messaging does not list the Tenant"

# Conditions are a list-map keyed by type: two field managers applying
# different condition types keep both (server-side apply merges by key).
apply_condition() {
  kubectl apply -n "$NS" --server-side --subresource=status --field-manager="$1" -f - >/dev/null <<EOF
apiVersion: $API
kind: Tenant
metadata: {name: acme-telegram}
status:
  conditions:
  - {type: $2, status: "True", reason: Test, message: by $1, lastTransitionTime: "2026-01-01T00:00:00Z"}
EOF
}
apply_condition manager-a CredentialsResolved
apply_condition manager-b ConnectorAvailable
types=$(kubectl get tenant acme-telegram -n "$NS" -o jsonpath='{.status.conditions[*].type}')
for t in CredentialsResolved ConnectorAvailable; do
  grep -qw "$t" <<<"$types" || fail "condition $t lost by list-map merge: $types"
done

failures=$(wc -l <"$failures_file")
[ "$failures" -eq 0 ] || um_die "$failures CRD check(s) failed"
um_log "CRDs: $samples sample files accepted, every bad manifest refused with its field named"
