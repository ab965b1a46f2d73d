# Sourced by every e2e script: one place for cache locations and helpers.
# Build caches live outside the clone so a fresh CI clone reuses them.
export UM_CACHE=${UM_CACHE:-$HOME/.cache/universal-messaging}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$UM_CACHE/target}
export PATH="$HOME/.cargo/bin:/usr/local/go/bin:$PATH"
mkdir -p "$UM_CACHE"

um_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
um_die() { um_log "ERROR: $*"; exit 1; }

# Installs Debian packages that are missing (apt-get update once per run).
um_apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  um_log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
