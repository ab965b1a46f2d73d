#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd, kube-apiserver and
# kube-controller-manager at the versions pinned in versions.env.
#
#   cluster.sh up <run-dir>    start it; returns once /readyz answers ok.
#                              Writes <run-dir>/kubeconfig (admin, group
#                              system:masters), <run-dir>/cluster.env (source
#                              it), <run-dir>/pki/, and logs to <run-dir>/logs/.
#   cluster.sh down <run-dir>  stop every process registered in <run-dir>
#                              (also the process runner and ingress proxy
#                              that with-cluster.sh adds).
#
# Environment: UM_CLUSTER_TTL (seconds, default 3600): a watchdog runs
# `down` after that long, so nothing outlives a forgotten run.
# UM_K8S_BIN: directory with the binaries (default: what build.sh prints).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/env.sh"
source "$here/versions.env"
source "$here/proc.sh"

usage() { um_die "usage: cluster.sh up|down <run-dir>"; }
[ $# -eq 2 ] || usage
cmd=$1
run_dir=$(mkdir -p "$2" && cd "$2" && pwd)

# The controllers our workloads need; HPA runs without metrics (it reports
# FailedGetResourceMetric until a metrics API exists, and scales on nothing).
CONTROLLERS=deployment-controller,replicaset-controller,garbage-collector-controller
CONTROLLERS+=,serviceaccount-controller,serviceaccount-token-controller,namespace-controller
CONTROLLERS+=,endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller
CONTROLLERS+=,horizontal-pod-autoscaler-controller,root-ca-certificate-publisher-controller
CONTROLLERS+=,disruption-controller,job-controller,ttl-after-finished-controller,clusterrole-aggregation-controller
SERVICE_CIDR=10.96.0.0/16

# --- certificates -----------------------------------------------------------

# issue <name> <subject> [san]: key + certificate signed by the run's CA.
issue() {
  local name=$1 subject=$2 san=${3:-}
  local pki="$run_dir/pki"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null \
    || um_die "openssl could not sign the $name certificate"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() {
  local pki="$run_dir/pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
    -days 2 -subj "/CN=um-e2e-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null \
    || um_die "openssl could not create the CA"
  issue apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"
  issue admin "/O=system:masters/CN=um-e2e-admin"
  issue controller-manager "/CN=system:kube-controller-manager"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig <file> <client-cert-name> <server-url>
write_kubeconfig() {
  local file=$1 client=$2 server=$3 pki="$run_dir/pki"
  local b64="base64 -w0"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: um-e2e
  cluster:
    server: $server
    certificate-authority-data: $($b64 <"$pki/ca.crt")
users:
- name: $client
  user:
    client-certificate-data: $($b64 <"$pki/$client.crt")
    client-key-data: $($b64 <"$pki/$client.key")
contexts:
- name: um-e2e
  context:
    cluster: um-e2e
    user: $client
    namespace: default
current-context: um-e2e
EOF
  chmod 600 "$file"
}

# --- up / down --------------------------------------------------------------

readyz() {
  curl -sf --max-time 2 --cacert "$run_dir/pki/ca.crt" \
    --cert "$run_dir/pki/admin.crt" --key "$run_dir/pki/admin.key" \
    "$1/readyz" | grep -qx ok
}

etcd_healthy() {
  curl -sf --max-time 2 "$1/health" | grep -q '"health":"true"'
}

up() {
  local bin=${UM_K8S_BIN:-}
  if [ -z "$bin" ]; then
    bin=$(bash "$here/build.sh" | tail -1) || um_die "build.sh failed"
  fi
  for b in kube-apiserver kube-controller-manager kubectl helm; do
    [ -x "$bin/$b" ] || um_die "missing $bin/$b (run e2e/cluster/build.sh)"
  done
  local etcd_bin
  if [ "$ETCD_SOURCE" = go ]; then etcd_bin="$bin/etcd"; else etcd_bin=$(command -v etcd) \
    || um_die "etcd not found: install Debian package $ETCD_DEBIAN_PACKAGE (um_apt_install $ETCD_DEBIAN_PACKAGE)"; fi
  command -v openssl >/dev/null || um_die "openssl not found (apt-get install openssl)"
  command -v curl >/dev/null || um_die "curl not found (apt-get install curl)"

  if um_proc_alive "$run_dir" kube-apiserver; then
    um_die "a control plane already runs in $run_dir (cluster.sh down $run_dir first)"
  fi

  # A failure or Ctrl-C while starting leaves nothing behind.
  trap 'um_log "start interrupted: stopping what was started"; down; exit 1' INT TERM
  trap 'if [ $? -ne 0 ]; then down; fi' EXIT

  mkdir -p "$run_dir/logs"
  make_pki

  local ttl=${UM_CLUSTER_TTL:-3600}
  # The watchdog: its own session, so it outlives this script and is
  # stopped by `down` like every other process.
  um_proc_start "$run_dir" watchdog bash -c \
    "sleep $ttl; echo 'TTL of ${ttl}s reached: stopping the cluster'; exec bash '$here/cluster.sh' down '$run_dir'"

  local etcd_port etcd_peer_port api_port
  etcd_port=$(um_free_port); etcd_peer_port=$(um_free_port); api_port=$(um_free_port)
  local etcd_url="http://127.0.0.1:$etcd_port"
  um_proc_start "$run_dir" etcd "$etcd_bin" \
    --name um-e2e --data-dir "$run_dir/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "um-e2e=http://127.0.0.1:$etcd_peer_port" \
    --quota-backend-bytes 2147483648 --snapshot-count 10000 --log-level warn
  um_wait_for 30 "etcd on $etcd_url" etcd_healthy "$etcd_url" \
    || { tail -20 "$run_dir/logs/etcd.log" >&2; um_die "etcd did not become healthy (log: $run_dir/logs/etcd.log)"; }

  local api_url="https://127.0.0.1:$api_port" pki="$run_dir/pki"
  um_proc_start "$run_dir" kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "$etcd_url" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$run_dir/pki" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode RBAC \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --endpoint-reconciler-type none \
    --profiling=false --v=1
  um_wait_for 90 "kube-apiserver /readyz on $api_url" readyz "$api_url" \
    || { tail -30 "$run_dir/logs/kube-apiserver.log" >&2; um_die "kube-apiserver did not become ready (log: $run_dir/logs/kube-apiserver.log)"; }

  write_kubeconfig "$run_dir/kubeconfig" admin "$api_url"
  write_kubeconfig "$run_dir/controller-manager.kubeconfig" controller-manager "$api_url"

  um_proc_start "$run_dir" kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$run_dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$run_dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$run_dir/controller-manager.kubeconfig" \
    --controllers "$CONTROLLERS" \
    --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
    --concurrent-deployment-syncs 5 --concurrent-replicaset-syncs 5 \
    --horizontal-pod-autoscaler-sync-period 5s --v=1

  cat >"$run_dir/cluster.env" <<EOF
# Written by e2e/cluster/cluster.sh up; source it.
export UM_RUN_DIR='$run_dir'
export KUBECONFIG='$run_dir/kubeconfig'
export UM_APISERVER_URL='$api_url'
export UM_APISERVER_PORT='$api_port'
export UM_CLUSTER_CA='$pki/ca.crt'
export UM_K8S_BIN='$bin'
export PATH='$bin':"\$PATH"
EOF

  # Ready means: the API answers and the controller manager has created the
  # default ServiceAccount (so Pods of namespace default are admitted).
  um_wait_for 60 "the default ServiceAccount" \
    "$bin/kubectl" --kubeconfig "$run_dir/kubeconfig" get serviceaccount default -n default \
    || { tail -30 "$run_dir/logs/kube-controller-manager.log" >&2; um_die "kube-controller-manager did not create the default ServiceAccount"; }
  trap - INT TERM EXIT
  um_log "control plane up: $api_url (KUBECONFIG=$run_dir/kubeconfig, TTL ${ttl}s)"
}

down() {
  # Workloads first (they talk to the API), then the control plane from the
  # top, etcd last; the watchdog last of all (it may be what runs this).
  local me=$$
  um_proc_stop_all_but_watchdog() {
    um_proc_stop_all "$run_dir" ingress process-runner kube-controller-manager kube-apiserver etcd
  }
  if [ -f "$run_dir/pids/watchdog.pid" ]; then
    local wpid
    read -r wpid _ <"$run_dir/pids/watchdog.pid"
    # Set aside so stop_all skips it; handled below.
    mv "$run_dir/pids/watchdog.pid" "$run_dir/watchdog.pid.stopping"
    um_proc_stop_all_but_watchdog
    mv "$run_dir/watchdog.pid.stopping" "$run_dir/pids/watchdog.pid"
    if [ "$wpid" != "$me" ] && [ "$wpid" != "$PPID" ]; then
      um_proc_stop "$run_dir" watchdog 2
    else
      rm -f "$run_dir/pids/watchdog.pid"
    fi
  else
    um_proc_stop_all_but_watchdog
  fi
  um_log "control plane in $run_dir stopped"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
