#!/usr/bin/env bash
# Real RabbitMQ (with the consistent-hash exchange plugin) and Redis for
# tests, on free loopback ports, in a run directory, with a bounded life.
#
# Sourced:  source e2e/services.sh; um_services_start <run-dir>
#           -> exports UM_TEST_AMQP_URL, UM_TEST_REDIS_URL,
#              UM_TEST_RABBITMQ_NODE, UM_TEST_BROKER_RESTART
#           um_services_restart_broker <run-dir>; um_services_stop <run-dir>
# CLI:      e2e/services.sh start|stop|restart-broker|restart-redis|env <run-dir>
#           (`start` prints the export lines; `env` prints them again)
#
# Both servers stop by themselves after UM_SERVICES_TTL seconds (default
# 3600) even if nobody calls stop. Debian's packages are installed if
# missing.

_um_services_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/env.sh
source "$_um_services_dir/lib/env.sh"

_um_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Erlang distribution (epmd, node and rabbitmqctl ports) on loopback only,
# with our own epmd so nothing is shared with another run.
_um_rabbit_env() {
  local run=$1
  # shellcheck disable=SC1091
  source "$run/services.env"
  export HOME="$run/rabbitmq/home"
  export RABBITMQ_NODENAME="$UM_TEST_RABBITMQ_NODE"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$UM_TEST_AMQP_PORT"
  export RABBITMQ_DIST_PORT="$UM_TEST_DIST_PORT"
  export RABBITMQ_MNESIA_BASE="$run/rabbitmq/mnesia"
  export RABBITMQ_LOG_BASE="$run/rabbitmq/log"
  export RABBITMQ_PID_FILE="$run/rabbitmq/rabbitmq.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$run/rabbitmq/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$run/rabbitmq/rabbitmq"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$run/rabbitmq/advanced.config"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export ERL_EPMD_PORT="$UM_TEST_EPMD_PORT"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_CTL_DIST_PORT_MIN="$UM_TEST_CTL_PORT"
  export RABBITMQ_CTL_DIST_PORT_MAX="$UM_TEST_CTL_PORT"
}

_um_rabbitmqctl() {
  local run=$1; shift
  ( _um_rabbit_env "$run"; /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" "$@" )
}

_um_rabbit_launch() {
  local run=$1
  (
    _um_rabbit_env "$run"
    cd "$run/rabbitmq"
    setsid /usr/lib/rabbitmq/bin/rabbitmq-server >>"$run/rabbitmq/server.out" 2>&1 </dev/null &
    echo $! >"$run/rabbitmq/launcher.pid"
  )
  local deadline=$(( $(date +%s) + 60 ))
  until _um_rabbitmqctl "$run" -q await_startup --timeout 5 >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 30 "$run/rabbitmq/server.out" >&2
      um_log "RabbitMQ did not start within 60 s (log above, more in $run/rabbitmq/log)"
      return 1
    fi
    sleep 0.5
  done
}

_um_rabbit_stop() {
  local run=$1
  [ -f "$run/services.env" ] || return 0
  _um_rabbitmqctl "$run" -q stop >/dev/null 2>&1 || true
  local pid
  pid=$(cat "$run/rabbitmq/launcher.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  fi
}

_um_services_exports() {
  local run=$1
  # shellcheck disable=SC1091
  source "$run/services.env"
  cat <<EOF
export UM_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$UM_TEST_AMQP_PORT/%2f'
export UM_TEST_REDIS_URL='redis://127.0.0.1:$UM_TEST_REDIS_PORT/'
export UM_TEST_RABBITMQ_NODE='$UM_TEST_RABBITMQ_NODE'
export UM_TEST_BROKER_RESTART='bash $_um_services_dir/services.sh restart-broker $run'
EOF
}

um_services_start() {
  local run=${1:?usage: um_services_start <run-dir>}
  mkdir -p "$run"
  run=$(cd "$run" && pwd)
  um_apt_install rabbitmq-server redis-server python3
  mkdir -p "$run/rabbitmq/home" "$run/rabbitmq/mnesia" "$run/rabbitmq/log" "$run/redis"
  chmod 700 "$run/rabbitmq/home"
  cat >"$run/services.env" <<EOF
UM_TEST_AMQP_PORT=$(_um_free_port)
UM_TEST_DIST_PORT=$(_um_free_port)
UM_TEST_EPMD_PORT=$(_um_free_port)
UM_TEST_CTL_PORT=$(_um_free_port)
UM_TEST_REDIS_PORT=$(_um_free_port)
UM_TEST_RABBITMQ_NODE=um-test-$$-$RANDOM@localhost
EOF
  echo '[rabbitmq_consistent_hash_exchange].' >"$run/rabbitmq/enabled_plugins"
  # Loopback only, and no disk-space alarm on a small CI disk.
  printf '%s\n' 'listeners.tcp.default = 127.0.0.1:'"$(. "$run/services.env"; echo "$UM_TEST_AMQP_PORT")" \
    'disk_free_limit.absolute = 50MB' 'log.console = true' 'log.console.level = warning' \
    >"$run/rabbitmq/rabbitmq.conf"
  echo '[].' >"$run/rabbitmq/advanced.config"

  # shellcheck disable=SC1091
  source "$run/services.env"
  # As the chart runs it: parked messages live here, so every write is on
  # disk before Redis answers, and a full Redis refuses writes instead of
  # evicting (bus/park.rs).
  _um_redis_launch "$run"
  _um_rabbit_launch "$run" || { um_services_stop "$run"; return 1; }
  local deadline=$(( $(date +%s) + 20 ))
  until redis-cli -p "$UM_TEST_REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    [ "$(date +%s)" -ge "$deadline" ] && { um_log "Redis did not answer within 20 s"; um_services_stop "$run"; return 1; }
    sleep 0.2
  done

  # Bounded life: stop everything after the TTL even if the caller dies.
  local ttl=${UM_SERVICES_TTL:-3600}
  setsid bash -c "sleep $ttl; bash '$_um_services_dir/services.sh' stop '$run'" >/dev/null 2>&1 </dev/null &
  echo $! >"$run/watchdog.pid"

  eval "$(_um_services_exports "$run")"
  um_log "services up: RabbitMQ $UM_TEST_RABBITMQ_NODE on 127.0.0.1:$UM_TEST_AMQP_PORT, Redis on 127.0.0.1:$UM_TEST_REDIS_PORT (stop after ${ttl}s at the latest)"
}

_um_redis_launch() {
  local run=$1
  # shellcheck disable=SC1091
  source "$run/services.env"
  redis-server --port "$UM_TEST_REDIS_PORT" --bind 127.0.0.1 --dir "$run/redis" \
    --save "" --appendonly yes --appendfsync always --maxmemory 256mb --maxmemory-policy noeviction \
    --daemonize yes --pidfile "$run/redis/redis.pid" \
    --logfile "$run/redis/redis.log" >/dev/null
}

# Stops Redis (it writes its append-only file) and starts it again on the
# same port and directory; returns once it answers.
um_services_restart_redis() {
  local run=${1:?usage: um_services_restart_redis <run-dir>}
  # shellcheck disable=SC1091
  source "$run/services.env"
  redis-cli -p "$UM_TEST_REDIS_PORT" shutdown >/dev/null 2>&1 || true
  local deadline=$(( $(date +%s) + 20 ))
  while redis-cli -p "$UM_TEST_REDIS_PORT" ping >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && um_die "Redis did not stop within 20 s"
    sleep 0.1
  done
  _um_redis_launch "$run"
  deadline=$(( $(date +%s) + 20 ))
  until redis-cli -p "$UM_TEST_REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    [ "$(date +%s)" -ge "$deadline" ] && um_die "Redis did not answer within 20 s"
    sleep 0.1
  done
}

um_services_restart_broker() {
  local run=${1:?usage: um_services_restart_broker <run-dir>}
  _um_rabbit_stop "$run"
  _um_rabbit_launch "$run"
}

um_services_stop() {
  local run=${1:?usage: um_services_stop <run-dir>}
  [ -f "$run/services.env" ] || return 0
  _um_rabbit_stop "$run"
  # shellcheck disable=SC1091
  source "$run/services.env"
  redis-cli -p "$UM_TEST_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  ( _um_rabbit_env "$run"; epmd -port "$UM_TEST_EPMD_PORT" -kill >/dev/null 2>&1 || true )
  local watchdog
  watchdog=$(cat "$run/watchdog.pid" 2>/dev/null || true)
  if [ -n "$watchdog" ] && [ "$watchdog" != "$$" ]; then
    kill -- "-$watchdog" 2>/dev/null || kill "$watchdog" 2>/dev/null || true
  fi
  rm -f "$run/watchdog.pid"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cmd=${1:-}; run=${2:-}
  [ -n "$cmd" ] && [ -n "$run" ] || um_die "usage: $0 start|stop|restart-broker|restart-redis|env <run-dir>"
  case $cmd in
    start) um_services_start "$run" >&2; _um_services_exports "$(cd "$run" && pwd)" ;;
    stop) um_services_stop "$run" ;;
    restart-broker) um_services_restart_broker "$run" ;;
    restart-redis) um_services_restart_redis "$run" ;;
    env) _um_services_exports "$(cd "$run" && pwd)" ;;
    *) um_die "unknown command $cmd (start|stop|restart-broker|restart-redis|env)" ;;
  esac
fi
