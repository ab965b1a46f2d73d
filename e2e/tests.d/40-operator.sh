# The operator against the real control plane: the um-operator binary runs
# as a local process with the admin kubeconfig, the Genesys Cloud and
# Telegram simulators (um-sim) stand in for the SaaS, the process runner
# runs the connector Pods it creates (the real um-connector binary, with
# real RabbitMQ and Redis), kube-controller-manager's garbage collector
# removes what the Tenants owned.
#
# Checks: a Telegram + Genesys Cloud Tenant becomes Ready with its webhook
# URL and integration id in status, the integration exists at the
# simulator, the installation's data plane (connectors, Ingress) runs in the
# operator's namespace and the Tenant's configuration is its own Secrets
# there, read by the connectors through the API; changing the
# integration name and the webhook token Secret PATCHes the integration; a
# Tenant whose Secret is missing reports CredentialsResolved=False naming
# it and becomes Ready when the Secret is created; an invalid Tenant is
# refused by the apiserver; a conflicting default Storage is reported, and
# every Storage and a Tenant of a preview platform are Ready=False with the
# reason NotImplemented / PlatformNotSupported and get nothing rendered; a
# configuration Secret an admission policy refuses is named (object and
# the apiserver's answer) in kubectl describe and a Warning Event; a second
# installation (own instance, Lease, bus namespace, watched namespace) runs
# beside the first in the same namespace, on the same cluster and broker;
# deleting the Tenants deletes the integrations, their configuration and,
# with the last one, the data plane; SIGTERM
# stops the operator cleanly and releases its Lease.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/e2e/lib/env.sh"

if [ "${1:-}" != --in-cluster ]; then
  um_apt_install etcd-server openssl curl python3 util-linux jq rabbitmq-server redis-server
  bash "$repo/e2e/cluster/build.sh" >/dev/null
  (cd "$repo" && cargo build -q -p um-operator -p um-simulators -p um-connector -p um-process-runner --bins)
  export UM_RUNNER_BIN="$CARGO_TARGET_DIR/debug/um-process-runner"
  UM_CLUSTER_TTL=${UM_CLUSTER_TTL:-900} exec bash "$repo/e2e/cluster/with-cluster.sh" \
    --image "um-connector=$CARGO_TARGET_DIR/debug/um-connector" -- bash "$0" --in-cluster
fi

source "$repo/e2e/cluster/proc.sh"
source "$repo/e2e/services.sh"
cd "$repo"
run=$UM_RUN_DIR
NS=op-e2e
OPERATOR_NS=um-system
API=messaging.universal-messaging.io/v1alpha1
bin="$CARGO_TARGET_DIR/debug"

cleanup() {
  local rc=$?
  um_proc_stop "$run" operator 15 || true
  um_proc_stop "$run" operator-2 15 || true
  um_proc_stop "$run" um-sim || true
  um_services_stop "$run/services" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    um_log "operator log (last 60 lines):"
    tail -n 60 "$run/logs/operator.log" >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

# wait_until <seconds> <description> <command...>: like um_wait_for, but
# prints what the command last said on timeout.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout )) out=""
  until out=$("$@" 2>&1); do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      um_log "FAIL: timed out after ${timeout}s waiting for $what; last answer: $out"
      return 1
    fi
    sleep 0.5
  done
}
fail() { um_die "FAIL: $*"; }

# --- dependencies: RabbitMQ, Redis, simulators -----------------------------
mkdir -p "$run/services"
um_services_start "$run/services" >/dev/null
source "$run/services/services.env" 2>/dev/null || true
[ -n "${UM_TEST_AMQP_URL:-}" ] || fail "RabbitMQ/Redis did not start"

BOT_TOKEN_ACME="111111:acme-bot-token"
BOT_TOKEN_BETA="222222:beta-bot-token"
CLIENT_ID=op-e2e-client
CLIENT_SECRET=op-e2e-client-secret-value
cat >"$run/sim.json" <<EOF
{"genesys": {"oauth_clients": {"$CLIENT_ID": "$CLIENT_SECRET"}, "create_completion_gets": 2, "rate_limit_per_minute": 0},
 "telegram": {"bot_tokens": ["$BOT_TOKEN_ACME", "$BOT_TOKEN_BETA"]}}
EOF
um_proc_start "$run" um-sim "$bin/um-sim" both --listen 127.0.0.1:0 --port-file "$run/sim.port" \
  --ttl "${UM_CLUSTER_TTL:-900}" --config "$run/sim.json"
wait_until 30 "um-sim port file" test -s "$run/sim.port"
SIM="http://127.0.0.1:$(cat "$run/sim.port")"
wait_until 30 "um-sim health" curl -fsS "$SIM/__sim/health"

# --- refusals at start: a typo in the configuration, CRDs not installed ----
printf 'apiRoot: https://um.example.com\nrabbitmq: {urlSecretRef: {name: a, key: b}}\nredis: {urlSecretRef: {name: a, key: b}}\ningress: {clasName: nginx}\n' \
  >"$run/typo.yaml"
if out=$(UM_OPERATOR_CONFIG="$run/typo.yaml" UM_HTTP_ADDR="127.0.0.1:$(um_free_port)" timeout 30 "$bin/um-operator" 2>&1); then
  fail "the operator started with a typo in its configuration"
fi
grep -q "typo.yaml" <<<"$out" && grep -q "clasName" <<<"$out" || fail "the configuration error names neither file nor field: $out"
printf 'apiRoot: https://um.example.com\nrabbitmq: {urlSecretRef: {name: a, key: b}}\nredis: {urlSecretRef: {name: a, key: b}}\n' >"$run/minimal.yaml"
if out=$(UM_OPERATOR_CONFIG="$run/minimal.yaml" UM_HTTP_ADDR="127.0.0.1:$(um_free_port)" timeout 30 "$bin/um-operator" 2>&1); then
  fail "the operator started without its CRDs"
fi
grep -q "tenants.messaging.universal-messaging.io" <<<"$out" && grep -q "kubectl apply" <<<"$out" \
  || fail "the missing-CRD error does not say which CRD and how to install it: $out"

# --- CRDs, namespaces, bus Secrets -----------------------------------------
kubectl apply --server-side -f crds/tenants.yaml -f crds/storages.yaml -f crds/notifierdestinations.yaml >/dev/null
kubectl wait --for condition=Established --timeout=60s \
  crd/tenants.messaging.universal-messaging.io crd/storages.messaging.universal-messaging.io \
  crd/notifierdestinations.messaging.universal-messaging.io >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$OPERATOR_NS" >/dev/null
# The installation's own Secrets and the connectors' ServiceAccount (what
# the chart creates): only in the operator's namespace.
kubectl -n "$OPERATOR_NS" create secret generic um-rabbitmq --from-literal=url="$UM_TEST_AMQP_URL" >/dev/null
kubectl -n "$OPERATOR_NS" create secret generic um-redis --from-literal=url="$UM_TEST_REDIS_URL" >/dev/null
kubectl -n "$OPERATOR_NS" create role um-connector-config --verb=get,list,watch --resource=secrets >/dev/null
for sa in um-connector um-second-connector; do
  kubectl -n "$OPERATOR_NS" create serviceaccount "$sa" >/dev/null
  kubectl -n "$OPERATOR_NS" create rolebinding "$sa" --role=um-connector-config --serviceaccount="$OPERATOR_NS:$sa" >/dev/null
done

# --- the operator -----------------------------------------------------------
API_ROOT=$UM_INGRESS_URL
cat >"$run/operator.yaml" <<EOF
apiRoot: $API_ROOT
image: {registry: ghcr.io, repository: universal-messaging/um-connector, tag: "0.1.0", pullPolicy: IfNotPresent}
logging: {level: "INFO"}
services:
  gcloudcx: {logging: {level: "DEBUG"}}
ingress: {enabled: true, className: nginx, host: "", annotations: {e2e: "yes"}, tls: []}
rabbitmq: {urlSecretRef: {name: um-rabbitmq, key: url}}
redis: {urlSecretRef: {name: um-redis, key: url}}
settings: {outboundProxy: "", defaultCommander: {prefix: ">"}}
watchNamespaces: [$NS, um-e2e-denied, op-e2e-gc]
genesysCloud: {apiBaseUrl: "$SIM", loginBaseUrl: "$SIM"}
platformApiBaseUrls: {telegram: "$SIM"}
EOF
OPERATOR_PORT=$(um_free_port)
OPERATOR_URL="http://127.0.0.1:$OPERATOR_PORT"
UM_OPERATOR_CONFIG="$run/operator.yaml" UM_HTTP_ADDR="127.0.0.1:$OPERATOR_PORT" \
  POD_NAMESPACE=$OPERATOR_NS POD_NAME=um-operator-e2e UM_LOG_LEVEL='INFO;DEBUG:{um_operator}' \
  um_proc_start "$run" operator "$bin/um-operator"
wait_until 60 "operator /readyz" curl -fsS "$OPERATOR_URL/readyz"
wait_until 30 "operator Lease" bash -c \
  "kubectl -n $OPERATOR_NS get lease um-operator-leader -o jsonpath='{.spec.holderIdentity}' | grep -qx um-operator-e2e"

# --- helpers ---------------------------------------------------------------
condition() { # <tenant> <type> -> "status/reason" (namespace $TNS, default $NS)
  kubectl -n "${TNS:-$NS}" get tenant "$1" -o json \
    | jq -r --arg t "$2" '(.status.conditions // [])[] | select(.type == $t) | "\(.status)/\(.reason)"'
}
condition_is() { [ "$(condition "$1" "$2")" = "$3" ]; }
tenant_yaml() { # <name> <bot secret> <integration name> [genesys Secret]
  cat <<EOF
apiVersion: $API
kind: Tenant
metadata: {name: $1, namespace: $NS}
spec:
  displayName: "$1 shop"
  messaging: {telegram: {botToken: {name: $2, key: token}}}
  cx:
    genesysCloud:
      region: ap-northeast-1
      oauthClient: {clientId: $CLIENT_ID, clientSecret: {name: ${4:-genesys}, key: clientSecret}}
      integration: {name: "$3", webhookToken: {name: $1-webhook, key: token}}
EOF
}
sim_integration() { # <id> -> JSON of the integration at the simulator, or nothing
  curl -fsS "$SIM/__sim/genesys/integrations" | jq -c --arg id "$1" '.current[] | select(.id == $id)'
}
absent() { ! kubectl -n "$NS" get "$1" "$2" >/dev/null 2>&1; }
home_absent() { ! kubectl -n "$OPERATOR_NS" get "$1" "$2" >/dev/null 2>&1; }
part() { # <service> <namespace.tenant> [instance] -> name of the Tenant's configuration Secret, or nothing
  kubectl -n "$OPERATOR_NS" get secrets -l "messaging.universal-messaging.io/instance=${3:-um},messaging.universal-messaging.io/service=$1" -o json \
    | jq -r --arg k "$2" '.items[] | select(.metadata.annotations["messaging.universal-messaging.io/tenant"] == $k) | .metadata.name'
}
part_json() { # <service> <namespace.tenant> -> the tenant.json it holds
  local name; name=$(part "$1" "$2")
  [ -n "$name" ] && kubectl -n "$OPERATOR_NS" get secret "$name" -o jsonpath='{.data.tenant\.json}' | base64 -d
}

# --- 1. an invalid Tenant is refused by the apiserver ----------------------
if out=$(tenant_yaml bad acme-telegram "Bad" | sed 's/messaging: {telegram: {botToken: {name: acme-telegram, key: token}}}/messaging: {telegram: {}}/' \
  | kubectl apply -f - 2>&1); then
  fail "a Tenant without botToken was accepted"
fi
grep -q "spec.messaging.telegram.botToken" <<<"$out" || fail "refusal does not name the field: $out"

# --- 2. a Telegram + Genesys Cloud Tenant becomes Ready -------------------
kubectl -n "$NS" create secret generic acme-telegram --from-literal=token="$BOT_TOKEN_ACME" >/dev/null
kubectl -n "$NS" create secret generic genesys --from-literal=clientSecret="$CLIENT_SECRET" >/dev/null
kubectl -n "$NS" create secret generic acme-webhook --save-config --from-literal=token="acme-webhook-token-0123456789" >/dev/null
t0=$(date +%s%N)
tenant_yaml acme acme-telegram "ACME Telegram" | kubectl apply -f - >/dev/null
wait_until 180 "Tenant acme Ready" condition_is acme Ready True/Ready
um_log "acme Ready $(( ($(date +%s%N) - t0) / 1000000 )) ms after kubectl apply (integration created, connector pods available)"

status=$(kubectl -n "$NS" get tenant acme -o json | jq -c .status)
[ "$(jq -r .webhookUrl <<<"$status")" = "$API_ROOT/telegram/$NS.acme" ] || fail "webhookUrl: $status"
[ "$(jq -r .openMessagingWebhookUrl <<<"$status")" = "$API_ROOT/openmessaging/$NS.acme" ] || fail "openMessagingWebhookUrl: $status"
for c in CredentialsResolved/True/Resolved IntegrationRegistered/True/Registered ConnectorAvailable/True/Available; do
  type=${c%%/*}; want=${c#*/}
  [ "$(condition acme "$type")" = "$want" ] || fail "condition $type is $(condition acme "$type"), want $want"
done
ACME_ID=$(jq -r .integrationId <<<"$status")
[ -n "$ACME_ID" ] && [ "$ACME_ID" != null ] || fail "no integrationId in status: $status"
integration=$(sim_integration "$ACME_ID")
[ -n "$integration" ] || fail "integration $ACME_ID not at the simulator"
[ "$(jq -r .name <<<"$integration")" = "ACME Telegram" ] || fail "integration name: $integration"
[ "$(jq -r .webhookUrl <<<"$integration")" = "$API_ROOT/openmessaging/$NS.acme" ] || fail "integration URL: $integration"
[ "$(jq -r .createStatus <<<"$integration")" = "Completed" ] || fail "integration not Completed: $integration"
kubectl -n "$NS" get tenant acme -o jsonpath='{.metadata.finalizers}' | grep -q "messaging.universal-messaging.io/integration" \
  || fail "finalizer missing on acme"

# The data plane is the installation's, in its namespace, shared by the
# Tenants of every namespace: no owner references, the installation's label.
for object in deployment/um-telegram deployment/um-gcloudcx service/um-telegram service/um-gcloudcx \
  secret/um-settings hpa/um-telegram hpa/um-gcloudcx ingress/um-ingress; do
  meta=$(kubectl -n "$OPERATOR_NS" get "${object%%/*}" "${object#*/}" -o json | jq -c .metadata) || fail "$object not in $OPERATOR_NS"
  [ "$(jq -r '.labels["messaging.universal-messaging.io/instance"]' <<<"$meta")" = um ] || fail "$object lacks the instance label"
  [ "$(jq -r '.ownerReferences // [] | length' <<<"$meta")" = 0 ] || fail "$object has owner references"
done
for kind in deployment service ingress secret; do
  [ -z "$(kubectl -n "$NS" get "$kind" -l app.kubernetes.io/managed-by=um-operator -o name)" ] \
    || fail "the operator wrote a $kind into the Tenant namespace $NS"
done
telegram_config=$(part_json telegram "$NS.acme") || fail "no telegram configuration Secret for $NS.acme"
gcloudcx_config=$(part_json gcloudcx "$NS.acme") || fail "no gcloudcx configuration Secret for $NS.acme"
grep -qF "$BOT_TOKEN_ACME" <<<"$telegram_config" || fail "bot token not in the telegram configuration"
grep -qF "$CLIENT_SECRET" <<<"$telegram_config" && fail "Genesys client secret leaked into the telegram configuration"
grep -qF "$BOT_TOKEN_ACME" <<<"$gcloudcx_config" && fail "bot token leaked into the gcloudcx configuration"
[ "$(jq -r '.genesys.integrationId' <<<"$gcloudcx_config")" = "$ACME_ID" ] \
  || fail "gcloudcx configuration lacks the integration id"
deployment=$(kubectl -n "$OPERATOR_NS" get deployment um-gcloudcx -o json)
[ "$(jq -r '.spec.template.spec.serviceAccountName' <<<"$deployment")" = um-connector ] || fail "pods do not run as um-connector"
[ "$(jq -r '.spec.template.spec.containers[0].env[] | select(.name == "UM_LOG_LEVEL") | .value' <<<"$deployment")" = DEBUG ] \
  || fail "per-service log level not applied"
jq -e '[.spec.template.spec.containers[0].env[] | select(.value != null) | .value] | map(select(contains("op-e2e-client-secret"))) | length == 0' \
  <<<"$deployment" >/dev/null || fail "a credential is a literal in the Deployment"
paths=$(kubectl -n "$OPERATOR_NS" get ingress um-ingress -o json | jq -r '[.spec.rules[0].http.paths[] | "\(.path)=\(.backend.service.name)"] | sort | join(" ")')
[ "$paths" = "/openmessaging=um-gcloudcx /telegram=um-telegram" ] || fail "ingress paths: $paths"
# No secret value in status or Events.
events=$(kubectl -n "$NS" get events -o json)
for secret in "$CLIENT_SECRET" "$BOT_TOKEN_ACME" acme-webhook-token-0123456789; do
  grep -qF "$secret" <<<"$status$events" && fail "a secret value appears in status or Events"
done
jq -e '[.items[] | select(.regarding.name == "acme" and .reason == "Registered")] | length >= 1' <<<"$events" >/dev/null \
  || jq -e '[.items[] | select(.involvedObject.name == "acme" and .reason == "Registered")] | length >= 1' <<<"$events" >/dev/null \
  || fail "no Registered Event for acme"

# The installation's connectors share one bus namespace, its instance name:
# the real connectors declared their queues under it.
bus_env=$(kubectl -n "$OPERATOR_NS" get deployment um-telegram -o json \
  | jq -r '.spec.template.spec.containers[0].env[] | select(.name == "UM_BUS_NAMESPACE") | .value')
[ "$bus_env" = "um" ] || fail "um-telegram's UM_BUS_NAMESPACE is '$bus_env', not um"
queues() { _um_rabbitmqctl "$run/services" -q list_queues name; }
own_queues() { queues | grep -qx "um.to-cx.0" && queues | grep -qx "um.to-guest.telegram.0"; }
wait_until 60 "queues um.to-cx.0 and um.to-guest.telegram.0" own_queues

# --- 3. changing the integration name and the token PATCHes it ------------
kubectl -n "$NS" patch tenant acme --type=merge \
  -p '{"spec": {"cx": {"genesysCloud": {"integration": {"name": "ACME Telegram (renamed)"}}}}}' >/dev/null
wait_until 60 "integration renamed at the simulator" bash -c \
  "curl -fsS '$SIM/__sim/genesys/integrations' | jq -e --arg id '$ACME_ID' '.current[] | select(.id == \$id and .name == \"ACME Telegram (renamed)\")'"
kubectl -n "$NS" create secret generic acme-webhook --from-literal=token="acme-rotated-token-9876543210" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
wait_until 60 "webhook token rotated at the simulator" bash -c \
  "curl -fsS '$SIM/__sim/genesys/integrations' | jq -e --arg id '$ACME_ID' '.current[] | select(.id == \$id and .secretToken == \"acme-rotated-token-9876543210\")'"
[ "$(curl -fsS "$SIM/__sim/genesys/integrations" | jq '.current | length')" = 1 ] || fail "an update created a second integration"
rotated() { part_json gcloudcx "$NS.acme" | grep -qF acme-rotated-token-9876543210; }
wait_until 60 "gcloudcx configuration carries the rotated token" rotated

# --- 4. a missing Secret is named, and creating it heals the Tenant -------
kubectl -n "$NS" create secret generic beta-webhook --from-literal=token="beta-webhook-token-0123456789" >/dev/null
tenant_yaml beta beta-telegram "Beta Telegram" | kubectl apply -f - >/dev/null
wait_until 60 "beta CredentialsResolved=False" condition_is beta CredentialsResolved False/SecretNotFound
message=$(kubectl -n "$NS" get tenant beta -o json | jq -r '.status.conditions[] | select(.type == "CredentialsResolved") | .message')
grep -q "beta-telegram" <<<"$message" || fail "CredentialsResolved message does not name the Secret: $message"
grep -q "spec.messaging.telegram.botToken" <<<"$message" || fail "CredentialsResolved message does not name the field: $message"
condition_is beta Ready False/NotReady || fail "beta Ready is $(condition beta Ready)"
t0=$(date +%s%N)
kubectl -n "$NS" create secret generic beta-telegram --from-literal=token="$BOT_TOKEN_BETA" >/dev/null
wait_until 120 "Tenant beta Ready after its Secret was created" condition_is beta Ready True/Ready
um_log "beta Ready $(( ($(date +%s%N) - t0) / 1000000 )) ms after its Secret was created"
[ -n "$(part telegram "$NS.beta")" ] || fail "no telegram configuration Secret for beta"
BETA_ID=$(kubectl -n "$NS" get tenant beta -o jsonpath='{.status.integrationId}')
[ -n "$(sim_integration "$BETA_ID")" ] || fail "beta's integration not at the simulator"

# --- 5. wrong OAuth credentials are reported, and heal with the Secret ---
kubectl -n "$NS" create secret generic gamma-webhook --from-literal=token="gamma-webhook-token-0123456789" >/dev/null
kubectl -n "$NS" create secret generic genesys-gamma --save-config --from-literal=clientSecret="not-the-right-secret" >/dev/null
tenant_yaml gamma beta-telegram "Gamma Telegram" genesys-gamma | kubectl apply -f - >/dev/null
wait_until 60 "gamma IntegrationRegistered=False/InvalidCredentials" condition_is gamma IntegrationRegistered False/InvalidCredentials
kubectl -n "$NS" get tenant gamma -o json | grep -qF "not-the-right-secret" && fail "the wrong secret appears in gamma"
kubectl -n "$NS" create secret generic genesys-gamma --from-literal=clientSecret="$CLIENT_SECRET" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
wait_until 60 "gamma Ready once its credentials are fixed" condition_is gamma Ready True/Ready

# Genesys 401/429 answers, adoption, update and deletion requests are pinned
# down without a cluster by operator/src/controllers/reconcile_tests.rs
# (stage 10); here only what needs the real apiserver (the Secret watch
# healing gamma above, garbage collection, leases) stays.
kubectl -n "$NS" delete tenant gamma >/dev/null

# --- 6. Storage: two defaults conflict -------------------------------------
kubectl -n "$NS" create secret generic gcs --from-literal=key='{"type":"service_account"}' >/dev/null
for s in first second; do
  kubectl apply -f - >/dev/null <<EOF
apiVersion: $API
kind: Storage
metadata: {name: $s, namespace: $NS}
spec: {type: gcs, default: true, gcs: {bucket: um-$s, serviceAccountKey: {name: gcs, key: key}}}
EOF
done
storage_conflict() {
  kubectl -n "$NS" get storage first -o json \
    | jq -e '.status.conditions[] | select(.type == "DefaultConflict" and .status == "True" and .reason == "MultipleDefaults" and (.message | contains("second")))'
}
wait_until 60 "Storage first reports the conflicting default" storage_conflict
kubectl -n "$NS" patch storage second --type=merge -p '{"spec": {"default": false}}' >/dev/null
no_conflict() { kubectl -n "$NS" get storage first -o json | jq -e '.status.conditions[] | select(.type == "DefaultConflict" and .status == "False")'; }
wait_until 60 "Storage first without conflict once it is the only default" no_conflict
# Nothing in this version uses a Storage: it says so, and no service gets
# its credentials.
storage_not_implemented() {
  kubectl -n "$NS" get storage first -o json \
    | jq -e '[.status.conditions[] | select((.type == "Ready" or .type == "Supported") and .status == "False" and .reason == "NotImplemented")] | length == 2'
}
wait_until 60 "Storage first Ready=False/NotImplemented" storage_not_implemented
kubectl -n "$OPERATOR_NS" get secrets -l messaging.universal-messaging.io/instance=um -o json \
  | jq -r '.items[].data | to_entries[].value | @base64d' | grep -q "um-first" \
  && fail "a Storage was rendered into a configuration Secret"

# --- 6b. a Tenant of a platform this version does not serve ----------------
kubectl -n "$NS" create secret generic wechat --from-literal=appSecret=s --from-literal=token=t >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: $API
kind: Tenant
metadata: {name: wx, namespace: $NS}
spec:
  displayName: WeChat preview
  messaging: {wechat: {appId: wx123, appSecret: {name: wechat, key: appSecret}, token: {name: wechat, key: token}}}
  cx:
    genesysCloud:
      region: ap-northeast-1
      oauthClient: {clientId: $CLIENT_ID, clientSecret: {name: genesys, key: clientSecret}}
      integration: {name: WeChat preview, webhookToken: {name: beta-webhook, key: token}}
EOF
wait_until 60 "wx Ready=False/PlatformNotSupported" condition_is wx Ready False/PlatformNotSupported
condition_is wx Supported False/PlatformNotSupported || fail "wx Supported is $(condition wx Supported)"
home_absent deployment um-wechat || fail "a Deployment was rendered for the unsupported WeChat Tenant"
[ -z "$(part wechat "$NS.wx")$(part gcloudcx "$NS.wx")" ] || fail "a configuration was rendered for the unsupported WeChat Tenant"
[ -z "$(curl -fsS "$SIM/__sim/genesys/integrations" | jq -r '.current[] | select(.name == "WeChat preview") | .id')" ] \
  || fail "an Open Messaging integration was registered for a Tenant nothing serves"
kubectl -n "$NS" delete tenant wx >/dev/null

# --- 6c. a write the apiserver refuses is named in kubectl describe ---------
# A ValidatingAdmissionPolicy denies the configuration Secrets of the
# Tenants of namespace $DENIED (what a quota or a platform team's policy
# does): the Tenant there says which object was refused and why, in its
# conditions and a Warning Event, the other Tenants stay Ready; removing the
# policy heals it. (A refused shared object, a Deployment, is reported by
# every Tenant it serves: reconcile_tests.rs, stage 10.)
DENIED=um-e2e-denied
kubectl create namespace "$DENIED" >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: um-e2e-no-config}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}
  validations:
  - expression: "!has(object.metadata.labels) || !('messaging.universal-messaging.io/tenant-namespace' in object.metadata.labels) || object.metadata.labels['messaging.universal-messaging.io/tenant-namespace'] != '$DENIED'"
    message: "configuration of namespace $DENIED is not allowed (e2e policy)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: um-e2e-no-config}
spec:
  policyName: um-e2e-no-config
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $OPERATOR_NS}}
EOF
policy_denies() {
  ! kubectl apply --dry-run=server -f - >/dev/null 2>&1 <<EOF
apiVersion: v1
kind: Secret
metadata: {name: probe, namespace: $OPERATOR_NS, labels: {messaging.universal-messaging.io/tenant-namespace: $DENIED}}
EOF
}
wait_until 30 "the admission policy is in force" policy_denies
kubectl -n "$DENIED" create secret generic acme-telegram --from-literal=token="$BOT_TOKEN_ACME" >/dev/null
kubectl -n "$DENIED" create secret generic genesys --from-literal=clientSecret="$CLIENT_SECRET" >/dev/null
kubectl -n "$DENIED" create secret generic denied-webhook --from-literal=token="denied-webhook-token-0123456789" >/dev/null
tenant_yaml denied acme-telegram "Denied Telegram" | sed "s/namespace: $NS}/namespace: $DENIED}/" | kubectl apply -f - >/dev/null
TNS=$DENIED wait_until 90 "denied Reconciled=False/ApplyFailed" condition_is denied Reconciled False/ApplyFailed
TNS=$DENIED condition_is denied Ready False/NotReady || fail "denied Ready is $(TNS=$DENIED condition denied Ready)"
described=$(kubectl -n "$DENIED" describe tenant denied)
grep -q "applying Secret $OPERATOR_NS/um-" <<<"$described" || fail "describe does not name the refused Secret: $described"
grep -q "configuration of namespace $DENIED is not allowed (e2e policy)" <<<"$described" \
  || fail "describe does not carry the policy's message: $described"
denied_warning() {
  kubectl -n "$DENIED" get events.events.k8s.io -o json \
    | jq -e '.items[] | select(.type == "Warning" and .reason == "ApplyFailed" and (.note | contains("Secret")))' >/dev/null
}
wait_until 30 "a Warning Event ApplyFailed" denied_warning
condition_is acme Ready True/Ready || fail "the refusal of another namespace's configuration touched acme: $(condition acme Ready)"
kubectl delete validatingadmissionpolicybinding um-e2e-no-config >/dev/null
t0=$(date +%s%N)
TNS=$DENIED wait_until 120 "denied Reconciled=True once the policy is gone" condition_is denied Reconciled True/Applied
um_log "denied: the refused configuration Secret was named in kubectl describe and a Warning Event; Reconciled=True $(( ($(date +%s%N) - t0) / 1000000 )) ms after the policy was removed"
[ -n "$(part telegram "$DENIED.denied")" ] || fail "no configuration Secret after the policy was removed"
kubectl delete validatingadmissionpolicy um-e2e-no-config >/dev/null
kubectl -n "$DENIED" delete tenant denied --wait=false >/dev/null
wait_until 60 "denied gone" bash -c "! kubectl -n $DENIED get tenant denied >/dev/null 2>&1"
[ -z "$(part telegram "$DENIED.denied")" ] || fail "denied's configuration Secret outlived it"

# --- 7. deleting Tenants deletes integrations and objects -----------------
kubectl -n "$NS" delete tenant acme --wait=false >/dev/null
wait_until 60 "acme gone" absent tenant acme
[ -z "$(sim_integration "$ACME_ID")" ] || fail "acme's integration still at the simulator"
curl -fsS "$SIM/__sim/genesys/integrations" | jq -e --arg id "$ACME_ID" '.deleted | index($id) != null' >/dev/null \
  || fail "the simulator saw no DELETE of acme's integration"
[ -z "$(part telegram "$NS.acme")$(part gcloudcx "$NS.acme")" ] || fail "acme's configuration Secrets outlived it"
kubectl -n "$OPERATOR_NS" get deployment um-telegram >/dev/null || fail "um-telegram went with acme while beta uses it"
kubectl -n "$NS" delete tenant beta --wait=false >/dev/null
wait_until 60 "beta gone" absent tenant beta
[ -z "$(sim_integration "$BETA_ID")" ] || fail "beta's integration still at the simulator"
# The last served Tenant is gone: the data plane is swept from the
# operator's namespace.
for object in deployment/um-telegram deployment/um-gcloudcx service/um-telegram secret/um-settings \
  hpa/um-gcloudcx ingress/um-ingress; do
  wait_until 60 "$object removed" home_absent "${object%%/*}" "${object#*/}"
done


# --- 7b. a second installation beside the first -----------------------------
# Another operator (instance um-second, serving only $SECOND_NS) in the same
# namespace as the first, on the same cluster, broker and Redis: its Tenant
# becomes Ready under its own Lease, objects and bus namespace, and the
# first operator (which serves nothing now) neither sweeps nor touches them.
SECOND_NS=op-e2e-second
kubectl create namespace "$SECOND_NS" >/dev/null
SECOND_BOT="333333:second-install-bot-token"
curl -fsS -X POST -H 'content-type: application/json' -d "{\"token\":\"$SECOND_BOT\"}" "$SIM/__sim/telegram/bots" >/dev/null
kubectl -n "$SECOND_NS" create secret generic acme-telegram --from-literal=token="$SECOND_BOT" >/dev/null
kubectl -n "$SECOND_NS" create secret generic genesys --from-literal=clientSecret="$CLIENT_SECRET" >/dev/null
kubectl -n "$SECOND_NS" create secret generic other-webhook --from-literal=token="other-webhook-token-0123456789" >/dev/null
sed -e "s/^watchNamespaces: .*/instance: um-second\nwatchNamespaces: [$SECOND_NS]/" "$run/operator.yaml" >"$run/operator-second.yaml"
grep -q "^instance: um-second" "$run/operator-second.yaml" || fail "the second installation's configuration was not written"
THIRD_PORT=$(um_free_port)
UM_OPERATOR_CONFIG="$run/operator-second.yaml" UM_HTTP_ADDR="127.0.0.1:$THIRD_PORT" \
  POD_NAMESPACE=$OPERATOR_NS POD_NAME=um-operator-second UM_LOG_LEVEL='INFO;DEBUG:{um_operator}' \
  um_proc_start "$run" operator-second "$bin/um-operator"
wait_until 60 "the second installation leads under its own Lease" bash -c \
  "kubectl -n $OPERATOR_NS get lease um-second-operator-leader -o jsonpath='{.spec.holderIdentity}' | grep -qx um-operator-second"
[ "$(kubectl -n "$OPERATOR_NS" get lease um-operator-leader -o jsonpath='{.spec.holderIdentity}')" = um-operator-e2e ] \
  || fail "the first installation lost its Lease to the second"
tenant_yaml other acme-telegram "Other install" | sed "s/namespace: $NS}/namespace: $SECOND_NS}/" | kubectl apply -f - >/dev/null
TNS=$SECOND_NS wait_until 180 "other (second installation) Ready" condition_is other Ready True/Ready
second_bus=$(kubectl -n "$OPERATOR_NS" get deployment um-second-telegram -o json \
  | jq -r '.spec.template.spec.containers[0].env[] | select(.name == "UM_BUS_NAMESPACE") | .value')
[ "$second_bus" = "um-second" ] || fail "the second installation's bus namespace is '$second_bus'"
[ -n "$(part telegram "$SECOND_NS.other" um-second)" ] || fail "no configuration Secret of the second installation"
[ -z "$(part telegram "$SECOND_NS.other")" ] || fail "the first installation wrote configuration for the second's Tenant"
home_absent deployment um-telegram || fail "the first installation runs connectors though it serves no Tenant"
second_queues() { queues | grep -qx "um-second.to-cx.0"; }
wait_until 60 "queue um-second.to-cx.0" second_queues
reporters=$(kubectl -n "$SECOND_NS" get events.events.k8s.io -o json | jq -r '[.items[] | select(.regarding.kind == "Tenant") | .reportingInstance] | unique | join(",")')
[ "$reporters" = um-operator-second ] || fail "Events of the second installation's Tenant come from: $reporters"
kubectl -n "$SECOND_NS" delete tenant other --wait=false >/dev/null
wait_until 60 "other gone (the second installation's finalizer)" bash -c "! kubectl -n $SECOND_NS get tenant other >/dev/null 2>&1"
um_proc_stop "$run" operator-second 20
wait_until 60 "the second installation's data plane swept with its last Tenant" home_absent deployment um-second-telegram
um_log "second installation: Ready under its own Lease, objects and bus namespace (um-second) in the same namespace, untouched by the first"

# --- 8. metrics, leader election, graceful shutdown ------------------------
metrics=$(curl -fsS "$OPERATOR_URL/metrics")
grep -Eq '^um_operator_reconciles_total\{kind="Tenant"\} [1-9]' <<<"$metrics" || fail "no Tenant reconcile counted"
grep -Eq '^um_operator_reconcile_duration_seconds_count\{kind="Storage"\} [1-9]' <<<"$metrics" || fail "no Storage duration"
grep -Eq '^um_operator_reconcile_errors_total\{kind="Tenant",error="InvalidCredentials"\} [1-9]' <<<"$metrics" \
  || fail "the InvalidCredentials failure was not counted"
grep -Eq '^um_operator_leader 1' <<<"$metrics" || fail "leader gauge not set"

# A second replica waits while the first leads, and takes over when it stops.
SECOND_PORT=$(um_free_port)
SECOND_URL="http://127.0.0.1:$SECOND_PORT"
UM_OPERATOR_CONFIG="$run/operator.yaml" UM_HTTP_ADDR="127.0.0.1:$SECOND_PORT" \
  POD_NAMESPACE=$OPERATOR_NS POD_NAME=um-operator-e2e-2 UM_LOG_LEVEL='INFO;DEBUG:{um_operator}' \
  um_proc_start "$run" operator-2 "$bin/um-operator"
wait_until 60 "second operator /readyz" curl -fsS "$SECOND_URL/readyz"
wait_until 30 "second operator waiting for the Lease" grep -q '"waiting for leadership"' "$run/logs/operator-2.log"
curl -fsS "$SECOND_URL/metrics" | grep -Eq '^um_operator_leader 0' || fail "the second replica claims leadership"
[ "$(kubectl -n "$OPERATOR_NS" get lease um-operator-leader -o jsonpath='{.spec.holderIdentity}')" = um-operator-e2e ] \
  || fail "the Lease changed hands while the first replica led"
um_proc_stop "$run" operator 20
grep -q '"stopped"' "$run/logs/operator.log" || fail "the operator did not stop gracefully"
[ "$(kubectl -n "$OPERATOR_NS" get lease um-operator-leader -o jsonpath='{.spec.holderIdentity}')" != um-operator-e2e ] \
  || fail "the Lease is still held by the stopped replica"
wait_until 30 "second operator leads" bash -c "curl -fsS '$SECOND_URL/metrics' | grep -Eq '^um_operator_leader 1'"

# The new leader reconciles: a PureConnect Tenant (no connector in this
# version) gets no finalizer, nothing rendered, and says why.
GC_NS=op-e2e-gc
kubectl create namespace "$GC_NS" >/dev/null
kubectl -n "$GC_NS" create secret generic solo-telegram --from-literal=token="$BOT_TOKEN_BETA" >/dev/null
printf '%s\n' \
  "apiVersion: $API" \
  "kind: Tenant" \
  "metadata: {name: solo, namespace: $GC_NS}" \
  "spec:" \
  "  displayName: Solo" \
  "  messaging: {telegram: {botToken: {name: solo-telegram, key: token}}}" \
  "  cx: {pureConnect: {primaryUrl: \"https://cic.example.com\", target: {name: Support, type: Workgroup}}}" \
  | kubectl apply -f - >/dev/null
TNS=$GC_NS wait_until 60 "solo Ready=False/CxNotSupported" condition_is solo Ready False/CxNotSupported
[ -z "$(kubectl -n "$GC_NS" get tenant solo -o jsonpath='{.metadata.finalizers}')" ] || fail "a pureConnect Tenant got a finalizer"
for object in deployment/um-telegram deployment/um-gcloudcx ingress/um-ingress; do
  home_absent "${object%%/*}" "${object#*/}" || fail "$object rendered for a Tenant nothing serves"
done
[ -z "$(part telegram "$GC_NS.solo")" ] || fail "a configuration was rendered for a Tenant nothing serves"
kubectl -n "$GC_NS" delete tenant solo >/dev/null

um_proc_stop "$run" operator-2 20
grep -q '"stopped"' "$run/logs/operator-2.log" || fail "the second operator did not stop gracefully"
for log in operator operator-2; do
  grep -qF "$CLIENT_SECRET" "$run/logs/$log.log" && fail "the client secret appears in the $log log"
done
um_log "operator: Tenant lifecycle, integration create/PATCH/DELETE, credential reporting, Secret healing, Storage conflict, GC, leader hand-over, shutdown: all checked"
