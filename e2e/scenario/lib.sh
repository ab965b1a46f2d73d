# Shared parts of the end-to-end scenarios (sourced, not run).
#
# A scenario script calls `scenario_outer "$0" <um-sim mode>...` first: it
# builds the binaries, starts RabbitMQ and Redis, one simulator process per
# mode (URL exported as UM_SIM_<MODE>), and re-runs the script inside a
# local control plane (e2e/cluster/with-cluster.sh). Inside, the helpers
# below install the chart and drive the simulators' /__sim/ control APIs.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$repo/e2e/lib/env.sh"

mode=${UM_SCENARIO_MODE:-test}

say() { if [ "$mode" = demo ]; then printf '\n\033[1m%s\033[0m\n' "$*" >&2; else um_log "$*"; fi; }
fail() { um_log "FAIL: $*"; exit 1; }

# jqget EXPR: evaluates a Python expression over the JSON on stdin (`d`).
jqget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d, "json": json}))' "$1"; }

# post URL JSON [curl args]: POST a JSON body, print the answer, fail on non-2xx.
post() { local url=$1 body=$2; shift 2; curl -fsS -X POST -H 'content-type: application/json' "$@" "$url" -d "$body"; }

# sim_wait BASE KIND COUNT TIMEOUT_S: a simulator's /wait long-poll
# (BASE is e.g. "$UM_SIM_GENESYS/__sim" or "$UM_SIM_LINE/__sim/line").
sim_wait() {
  curl -fsS "$1/wait?kind=$2&count=$3&timeout_ms=$(( $4 * 1000 ))" >/dev/null \
    || fail "simulator $1: expected $3 record(s) of kind $2 within $4 s; got $(curl -fsS "$1/records?kind=$2")"
}

# poll TIMEOUT_S DESCRIPTION CMD...: runs CMD until it succeeds or fails the
# scenario after the deadline.
poll() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what (waited $timeout s)"
    sleep 0.5
  done
}

scenario_outer() { # script mode...
  local script=$1; shift
  [ "${UM_SCENARIO_INNER:-}" = 1 ] && return 0
  cd "$repo"
  say "Building the operator, the connector, the simulators and the process runner"
  cargo build -q -p um-operator -p um-connector -p um-simulators -p um-process-runner \
    || um_die "cargo build failed"
  local bin=$CARGO_TARGET_DIR/debug
  work=$(mktemp -d "${TMPDIR:-/tmp}/um-scenario.XXXXXX")
  export UM_SCENARIO_WORK=$work
  sim_pids=()
  trap scenario_cleanup EXIT

  say "Starting RabbitMQ and Redis (Debian packages, loopback)"
  source "$repo/e2e/services.sh"
  um_services_start "$work/services" >/dev/null

  local sim
  for sim in "$@"; do
    say "Starting the $sim simulator"
    "$bin/um-sim" "$sim" --listen 127.0.0.1:0 --port-file "$work/sim-$sim.port" \
      --ttl "${UM_CLUSTER_TTL:-3600}" >"$work/sim-$sim.log" 2>&1 &
    sim_pids+=($!)
    for _ in $(seq 100); do [ -s "$work/sim-$sim.port" ] && break; sleep 0.1; done
    [ -s "$work/sim-$sim.port" ] || um_die "um-sim $sim did not start: $(cat "$work/sim-$sim.log")"
    export "UM_SIM_${sim^^}=http://127.0.0.1:$(cat "$work/sim-$sim.port")"
  done

  export UM_SCENARIO_INNER=1 UM_SCENARIO_MODE=$mode
  local status=0
  bash "$repo/e2e/cluster/with-cluster.sh" \
    --image "um-operator=$bin/um-operator" --image "um-connector=$bin/um-connector" \
    -- bash "$script" || status=$?
  exit $status
}

scenario_cleanup() {
  local pid
  for pid in "${sim_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash "$repo/e2e/services.sh" stop "$work/services" >/dev/null 2>&1 || true
  if [ "${UM_KEEP_RUN_DIR:-}" = 1 ]; then um_log "kept $work"; else rm -rf "$work"; fi
}

# install_chart [--release NAME] [--namespace NS] [--watch NS,NS...]
#   [--api-root URL] [--no-crds] [--fetch-allow CIDR,HOST...] GENESYS_URL
#   [platform=api-base-url]...:
# helm install (defaults: release um, namespace um-system, every namespace
# watched, api.apiRoot $UM_INGRESS_URL) with the broker and Redis URL
# Secrets in the release namespace only (the connectors run there; Tenant
# namespaces hold only the business's Secrets), the watched namespaces
# created first (the chart binds a Role in each), and Genesys Cloud (and
# each named platform's API) pointed at the simulators.
install_chart() {
  local sets=()
  local release=um release_ns=um-system watch="" api_root=$UM_INGRESS_URL crds=true
  while [ $# -gt 0 ]; do
    case $1 in
      --release) release=$2; shift 2 ;;
      --namespace) release_ns=$2; shift 2 ;;
      --watch) watch=$2; shift 2 ;;
      --api-root) api_root=$2; shift 2 ;;
      --no-crds) crds=false; shift ;;
      --fetch-allow) sets+=(--set "serviceDefaults.fetchAllow={$2}"); shift 2 ;;
      *) break ;;
    esac
  done
  local genesys=$1; shift
  local pair watched
  for pair in "$@"; do sets+=(--set "platformApiBaseUrls.${pair%%=*}=${pair#*=}"); done
  [ -n "$watch" ] && sets+=(--set "watchNamespaces={$watch}")
  say "Installing the chart (helm install $release) into namespace $release_ns${watch:+, serving $watch}"
  kubectl create namespace "$release_ns" >/dev/null
  for watched in ${watch//,/ }; do
    kubectl get namespace "$watched" >/dev/null 2>&1 || kubectl create namespace "$watched" >/dev/null
  done
  kubectl -n "$release_ns" create secret generic um-rabbitmq --from-literal=url="$UM_TEST_AMQP_URL" >/dev/null
  kubectl -n "$release_ns" create secret generic um-redis --from-literal=url="$UM_TEST_REDIS_URL" >/dev/null
  helm install "$release" charts/universal-messaging --namespace "$release_ns" \
    --set crds.enabled="$crds" \
    --set api.apiRoot="$api_root" \
    --set operator.image.repository=universal-messaging/um-operator \
    --set image.repository=universal-messaging/um-connector \
    --set rabbitmq.install=false --set rabbitmq.external.urlSecret.name=um-rabbitmq \
    --set redis.install=false --set redis.external.urlSecret.name=um-redis \
    --set genesysCloud.apiBaseUrl="$genesys" --set genesysCloud.loginBaseUrl="$genesys" \
    "${sets[@]}" --wait --timeout 180s >/dev/null || fail "helm install $release"
  kubectl -n "$release_ns" rollout status deployment --timeout=120s >/dev/null || fail "operator rollout ($release)"
}

# instance_of RELEASE_NS RELEASE: the installation name the chart gave the
# operator (it names the data plane: <instance>-<service>, ...).
instance_of() {
  kubectl -n "$1" get configmap "$2-universal-messaging-operator-config" -o jsonpath='{.data.config\.yaml}' \
    | sed -n 's/^instance: //p'
}

# data_plane RELEASE_NS INSTANCE: kind/name of every object the operator
# wrote for the installation (connectors, Services, HPAs, Ingress,
# configuration Secrets), sorted.
data_plane() {
  kubectl -n "$1" get deployments,services,horizontalpodautoscalers,ingresses,secrets \
    -l "app.kubernetes.io/managed-by=um-operator,messaging.universal-messaging.io/instance=$2" -o name | sort
}

# tenant_parts RELEASE_NS INSTANCE TENANT_NS TENANT: the Tenant's
# configuration Secrets ("<service> <name>" lines, sorted by service).
tenant_parts() {
  kubectl -n "$1" get secrets -l "messaging.universal-messaging.io/instance=$2,messaging.universal-messaging.io/config=tenant" -o json \
    | python3 -c '
import json, sys
key = sys.argv[1]
for s in sorted(json.load(sys.stdin)["items"], key=lambda s: s["metadata"]["labels"].get("messaging.universal-messaging.io/service", "")):
    m = s["metadata"]
    if m.get("annotations", {}).get("messaging.universal-messaging.io/tenant") == key:
        print(m["labels"].get("messaging.universal-messaging.io/service"), m["name"])' "$3.$4"
}

# check_data_plane RELEASE_NS INSTANCE SERVICE...: the installation's
# connectors (running as its connector ServiceAccount), Services, the
# Ingress and the settings Secret exist in its namespace, with the
# installation's label and no owner.
check_data_plane() {
  local release_ns=$1 instance=$2 service object meta; shift 2
  local objects=("ingress/$instance-ingress" "secret/$instance-settings")
  for service in "$@"; do objects+=("deployment/$instance-$service" "service/$instance-$service"); done
  for object in "${objects[@]}"; do
    meta=$(kubectl -n "$release_ns" get "$object" -o json 2>/dev/null) || fail "$object not in $release_ns: $(data_plane "$release_ns" "$instance")"
    [ "$(jqget "d['metadata']['labels'].get('messaging.universal-messaging.io/instance')" <<<"$meta")" = "$instance" ] \
      || fail "$object lacks the label messaging.universal-messaging.io/instance=$instance"
    [ "$(jqget "len(d['metadata'].get('ownerReferences', []))" <<<"$meta")" = 0 ] || fail "$object has owner references"
    case $object in deployment/*)
      [ "$(jqget "d['spec']['template']['spec']['serviceAccountName']" <<<"$meta")" = "$instance-connector" ] \
        || fail "$object does not run as $instance-connector"
    esac
  done
}

# tenant_namespace_clean NS SECRET...: the Tenant namespace holds no
# Deployment, Service, Ingress or autoscaler, and exactly the business's Secrets.
tenant_namespace_clean() {
  local ns=$1; shift
  local others
  others=$(kubectl -n "$ns" get deployments,services,ingresses,horizontalpodautoscalers -o name)
  [ -z "$others" ] || fail "the Tenant namespace $ns holds $others"
  local secrets expected
  secrets=$(kubectl -n "$ns" get secrets -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)
  expected=$(printf '%s\n' "$@" | sort)
  [ "$secrets" = "$expected" ] || fail "the Tenant namespace $ns holds the Secrets $(echo $secrets), not $(echo $expected)"
}

# wait_data_plane_gone RELEASE_NS INSTANCE: within 120 s nothing of the
# installation's data plane is left (the operator deletes it when its last
# Tenant goes: there are no owner references for the garbage collector).
wait_data_plane_gone() {
  local deadline=$(( $(date +%s) + 120 ))
  until [ -z "$(data_plane "$1" "$2")" ]; do
    [ "$(date +%s)" -lt "$deadline" ] \
      || fail "the data plane of $2 is still in $1 after 120 s: $(data_plane "$1" "$2" | tr '\n' ' ')"
    sleep 0.5
  done
}

# wait_ready TENANT [NS]: Ready=True within 180 s, or fail with its
# conditions (NS defaults to $ns).
wait_ready() {
  local tns=${2:-$ns}
  kubectl -n "$tns" wait --for=condition=Ready "tenant/$1" --timeout=180s >/dev/null \
    || fail "Tenant $tns/$1 not Ready: $(kubectl -n "$tns" get tenant "$1" -o jsonpath='{.status.conditions}')"
}

# tenant_status TENANT FIELD [NS]
tenant_status() { kubectl -n "${3:-$ns}" get tenant "$1" -o jsonpath="{.status.$2}"; }

# integration_registered GENESYS_URL ID: the integration exists at the simulator.
integration_registered() {
  curl -fsS "$1/__sim/genesys/integrations" | jqget "[i['id'] for i in d['current']]" | grep -q "$2" \
    || fail "integration $2 not registered at the Genesys simulator"
}

# integration_deleted GENESYS_URL ID
integration_deleted() {
  curl -fsS "$1/__sim/genesys/integrations" | jqget "d['deleted']" | grep -q "$2" \
    || fail "integration $2 not deleted at the Genesys simulator"
}
