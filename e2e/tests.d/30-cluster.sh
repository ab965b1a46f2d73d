# shellcheck shell=bash
# The local control plane, the process runner and the ingress proxy: builds
# (cached) the pinned Kubernetes binaries, brings a cluster up in a temporary
# run directory, runs e2e/cluster/checks/runner.sh against it, tears down.
set -euo pipefail
source "$(dirname "$0")/../lib/env.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)

source "$repo/e2e/cluster/versions.env"
packages=(openssl curl python3 util-linux)
[ "$ETCD_SOURCE" = debian ] && packages+=("$ETCD_DEBIAN_PACKAGE")
um_apt_install "${packages[@]}"
bash "$repo/e2e/cluster/build.sh" >/dev/null
cargo build -q -p um-process-runner
export UM_RUNNER_BIN="$CARGO_TARGET_DIR/debug/um-process-runner"
# Mount points the checks' Pods use; the runner removes those it created.
mount_points=(/opt/echo /etc/web-content /var/lib/echo-init /srv/content /srv/late)
preexisting=()
for p in "${mount_points[@]}"; do [ -e "$p" ] && preexisting+=("$p"); done
UM_CLUSTER_TTL=${UM_CLUSTER_TTL:-900} \
  bash "$repo/e2e/cluster/with-cluster.sh" --image python3=/usr/bin/python3 \
  --image "um-process-runner=$UM_RUNNER_BIN" \
  bash "$repo/e2e/cluster/checks/runner.sh"
for p in "${mount_points[@]}"; do
  if [ -e "$p" ] && ! printf '%s\n' "${preexisting[@]}" | grep -qx "$p"; then
    um_die "the process runner left its mount point $p behind"
  fi
done

# Bounded lifetime: a cluster left running stops itself after UM_CLUSTER_TTL.
source "$repo/e2e/cluster/proc.sh"
ttl_dir=$(mktemp -d "${TMPDIR:-/tmp}/um-cluster-ttl.XXXXXX")
UM_CLUSTER_TTL=15 bash "$repo/e2e/cluster/cluster.sh" up "$ttl_dir"
all_stopped() {
  for c in etcd kube-apiserver kube-controller-manager watchdog; do
    um_proc_alive "$ttl_dir" "$c" && return 1
  done
  return 0
}
um_proc_alive "$ttl_dir" kube-apiserver || um_die "TTL check: the control plane did not start"
um_wait_for 60 "the TTL watchdog to stop the cluster" all_stopped \
  || { bash "$repo/e2e/cluster/cluster.sh" down "$ttl_dir"; um_die "the cluster outlived UM_CLUSTER_TTL"; }
grep -q 'TTL of 15s reached' "$ttl_dir/logs/watchdog.log" || um_die "the watchdog did not report the TTL"
rm -rf "$ttl_dir"
um_log "ok: the TTL watchdog stopped every component"
