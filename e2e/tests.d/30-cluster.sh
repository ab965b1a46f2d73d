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
