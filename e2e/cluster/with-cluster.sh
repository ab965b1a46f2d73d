#!/usr/bin/env bash
# Runs a command against a fresh local cluster, then tears everything down:
#
#   e2e/cluster/with-cluster.sh [--image NAME=PATH ...] [--] <command> [args...]
#
# Brings up the control plane (cluster.sh up), the process runner (which
# binds and runs Pods whose image's last path segment is a NAME given with
# --image, or in UM_RUNNER_IMAGES) and the ingress proxy, then runs the
# command with this environment:
#
#   UM_RUN_DIR        the run directory (logs/, pods/<ns>_<pod>/, pki/)
#   KUBECONFIG        admin kubeconfig (group system:masters)
#   UM_APISERVER_URL  https://127.0.0.1:<port>
#   UM_INGRESS_URL    http://127.0.0.1:<port> of the ingress proxy
#   UM_RUNNER_NODE    the node name Pods are bound to (um-local)
#   PATH              with the pinned kubectl and helm first
#
# The command's exit status is this script's. Everything stops on exit,
# on Ctrl-C, and after UM_CLUSTER_TTL seconds (default 3600) at the latest.
# Other settings:
#   UM_RUNNER_IMAGES  space-separated NAME=PATH mappings, added to --image
#   UM_RUNNER_BIN     the um-process-runner binary (default: cargo build -p
#                     um-process-runner into $CARGO_TARGET_DIR)
#   UM_RUN_DIR        reuse this run directory instead of a temporary one
#                     (kept after exit; a temporary one is removed on success)
#   UM_KEEP_RUN_DIR=1 keep the temporary run directory
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/../lib/env.sh"
source "$here/proc.sh"

images=()
for m in ${UM_RUNNER_IMAGES:-}; do images+=(--image "$m"); done
while [ $# -gt 0 ]; do
  case "$1" in
    --image) [ $# -ge 2 ] || um_die "--image needs NAME=PATH"; images+=(--image "$2"); shift 2 ;;
    --image=*) images+=(--image "${1#--image=}"); shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || um_die "usage: with-cluster.sh [--image NAME=PATH ...] [--] <command> [args...]"
[ ${#images[@]} -gt 0 ] || um_log "warning: no --image mapping: the process runner will run no Pod"

ttl=${UM_CLUSTER_TTL:-3600}
export UM_CLUSTER_TTL=$ttl

runner=${UM_RUNNER_BIN:-}
if [ -z "$runner" ]; then
  um_log "building um-process-runner"
  (cd "$repo" && cargo build -q -p um-process-runner) || um_die "cargo build -p um-process-runner failed"
  runner="$CARGO_TARGET_DIR/debug/um-process-runner"
fi
[ -x "$runner" ] || um_die "process runner binary not found: $runner"

temp_run_dir=false
if [ -z "${UM_RUN_DIR:-}" ]; then
  UM_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/um-cluster.XXXXXX")
  temp_run_dir=true
fi
run_dir=$UM_RUN_DIR

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  bash "$here/cluster.sh" down "$run_dir" || true
  if $temp_run_dir && [ "$rc" -eq 0 ] && [ "${UM_KEEP_RUN_DIR:-0}" != 1 ]; then
    rm -rf "$run_dir"
  else
    um_log "run directory kept: $run_dir"
  fi
  exit "$rc"
}
cmd_pid=
# A signal stops the command too (it runs in the background so the trap
# fires at once), then the EXIT trap tears down.
on_signal() {
  [ -n "$cmd_pid" ] && kill -TERM "$cmd_pid" 2>/dev/null
  exit "$1"
}
trap teardown EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

bash "$here/cluster.sh" up "$run_dir"
source "$run_dir/cluster.env"

export UM_RUNNER_NODE=um-local
um_proc_start "$run_dir" process-runner "$runner" run \
  --run-dir "$run_dir" --node-name "$UM_RUNNER_NODE" --ttl "$ttl" "${images[@]}"
ingress_port=$(um_free_port)
um_proc_start "$run_dir" ingress "$runner" ingress --listen "127.0.0.1:$ingress_port" --ttl "$ttl"
export UM_INGRESS_URL="http://127.0.0.1:$ingress_port"

node_ready() { kubectl get node "$UM_RUNNER_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
um_wait_for 60 "node $UM_RUNNER_NODE Ready" node_ready \
  || { tail -20 "$run_dir/logs/process-runner.log" >&2; um_die "the process runner did not register its node"; }
ingress_up() { curl -s -o /dev/null --max-time 2 "$UM_INGRESS_URL/"; }
um_wait_for 60 "ingress proxy on $UM_INGRESS_URL" ingress_up \
  || { tail -20 "$run_dir/logs/ingress.log" >&2; um_die "the ingress proxy did not start"; }

cat >>"$run_dir/cluster.env" <<EOF
export UM_INGRESS_URL='$UM_INGRESS_URL'
export UM_RUNNER_NODE='$UM_RUNNER_NODE'
EOF
um_log "cluster ready: KUBECONFIG=$KUBECONFIG UM_INGRESS_URL=$UM_INGRESS_URL UM_RUN_DIR=$run_dir"
export UM_RUN_DIR=$run_dir
# Explicit stdin: a background command would otherwise read /dev/null.
"$@" <&0 &
cmd_pid=$!
wait "$cmd_pid"
