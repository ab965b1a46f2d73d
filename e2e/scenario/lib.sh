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

# install_chart GENESYS_URL [platform=api-base-url]...: helm install with
# the bus and Redis Secrets in namespace $ns and Genesys Cloud (and each
# named platform's API) pointed at the simulators.
install_chart() {
  local genesys=$1; shift
  local sets=() pair
  for pair in "$@"; do sets+=(--set "platformApiBaseUrls.${pair%%=*}=${pair#*=}"); done
  say "Installing the chart (helm install) into namespace um-system"
  kubectl create namespace "$ns" >/dev/null
  kubectl -n "$ns" create secret generic um-rabbitmq --from-literal=url="$UM_TEST_AMQP_URL" >/dev/null
  kubectl -n "$ns" create secret generic um-redis --from-literal=url="$UM_TEST_REDIS_URL" >/dev/null
  helm install um charts/universal-messaging --namespace um-system --create-namespace \
    --set api.apiRoot="$UM_INGRESS_URL" \
    --set operator.image.repository=universal-messaging/um-operator \
    --set image.repository=universal-messaging/um-connector \
    --set rabbitmq.install=false --set rabbitmq.external.urlSecret.name=um-rabbitmq \
    --set redis.install=false --set redis.external.urlSecret.name=um-redis \
    --set genesysCloud.apiBaseUrl="$genesys" --set genesysCloud.loginBaseUrl="$genesys" \
    "${sets[@]}" --wait --timeout 180s >/dev/null || fail "helm install"
  kubectl -n um-system rollout status deployment --timeout=120s >/dev/null || fail "operator rollout"
}

# wait_ready TENANT: Ready=True within 180 s, or fail with its conditions.
wait_ready() {
  kubectl -n "$ns" wait --for=condition=Ready "tenant/$1" --timeout=180s >/dev/null \
    || fail "Tenant $1 not Ready: $(kubectl -n "$ns" get tenant "$1" -o jsonpath='{.status.conditions}')"
}

tenant_status() { kubectl -n "$ns" get tenant "$1" -o jsonpath="{.status.$2}"; }

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
