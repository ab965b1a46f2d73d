# shellcheck shell=bash
# Sourced by cluster.sh and with-cluster.sh: background processes of one run
# directory. Each process is started in its own session (so a stop reaches
# its children too) and registered in <run-dir>/pids/<name>.pid with the
# executable it runs; um_proc_stop_all stops exactly those, never anything
# found by name.

# um_free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
um_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local port
  while :; do
    port=$(( 20000 + RANDOM % 40000 ))
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
  done
}

# um_proc_start <run-dir> <name> <command> [args...]: starts the command in
# the background with stdout/stderr to <run-dir>/logs/<name>.log. Start a
# script through its interpreter (bash script.sh), so the registered
# executable is the one the process runs.
um_proc_start() {
  local run_dir=$1 name=$2; shift 2
  mkdir -p "$run_dir/pids" "$run_dir/logs"
  local exe
  exe=$(command -v "$1") || um_die "$name: command not found: $1"
  setsid "$@" >>"$run_dir/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  printf '%s %s\n' "$pid" "$(readlink -f "$exe")" >"$run_dir/pids/$name.pid"
  um_log "started $name (pid $pid), log: $run_dir/logs/$name.log"
}

# um_proc_alive <run-dir> <name>: true while the registered process runs.
um_proc_alive() {
  local file="$1/pids/$2.pid" pid exe
  [ -f "$file" ] || return 1
  read -r pid exe <"$file"
  _um_proc_is "$pid" "$exe"
}

# True when pid runs exe (guards against a reused pid).
_um_proc_is() {
  local pid=$1 exe=$2
  [ -d "/proc/$pid" ] || return 1
  # A zombie has no exe link: it is gone for our purpose.
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  local actual
  actual=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${actual% (deleted)}" = "$exe" ]
}

# um_proc_stop <run-dir> <name> [grace-seconds]: SIGTERM to the process
# group, SIGKILL after the grace period.
um_proc_stop() {
  local run_dir=$1 name=$2 grace=${3:-10}
  local file="$run_dir/pids/$name.pid" pid exe
  [ -f "$file" ] || return 0
  read -r pid exe <"$file"
  if _um_proc_is "$pid" "$exe"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( $(date +%s) + grace ))
    while _um_proc_is "$pid" "$exe" && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 0.2
    done
    if _um_proc_is "$pid" "$exe"; then
      um_log "$name (pid $pid) did not stop within ${grace}s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

# um_proc_stop_all <run-dir> [first...]: stops the named processes first (in
# order), then every other registered one.
um_proc_stop_all() {
  local run_dir=$1; shift
  local name
  for name in "$@"; do um_proc_stop "$run_dir" "$name"; done
  [ -d "$run_dir/pids" ] || return 0
  for file in "$run_dir"/pids/*.pid; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .pid)
    um_proc_stop "$run_dir" "$name"
  done
}

# um_wait_for <seconds> <description> <command...>: polls the command until
# it succeeds or the deadline passes.
um_wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { um_log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.3
  done
}
