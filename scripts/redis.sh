#!/usr/bin/env bash
# A throwaway redis-server on 127.0.0.1 for the Redis tests and benchmark.
#
#   scripts/redis.sh start [PORT]   install Debian's redis-server if missing, start one on
#                                   127.0.0.1:PORT (default 6390; no persistence), wait until
#                                   it answers, and print the URL to export:
#                                   export FASTREQ_REDIS_URL=redis://127.0.0.1:PORT/
#   scripts/redis.sh stop [PORT]    stop it (only the one this script started on PORT)
#
# Used by CI around `cargo test --all-features` with FASTREQ_REDIS_REQUIRED=1.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

cmd="${1:-}"
port="${2:-6390}"
pidfile="${TMPDIR:-/tmp}/fastreq-redis-$port.pid"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ping_ok() {
  # RESP inline PING over bash's /dev/tcp: no redis-cli needed.
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply=""
  read -r -t 1 reply <&3 || true
  exec 3<&- 3>&-
  [ "${reply%$'\r'}" = "+PONG" ]
}

case "$cmd" in
  start)
    if ! command -v redis-server >/dev/null 2>&1; then
      echo "== installing redis-server"
      as_root apt-get update
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
    fi
    if ping_ok; then
      echo "redis already answers on 127.0.0.1:$port"
    else
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$pidfile" --logfile "${TMPDIR:-/tmp}/fastreq-redis-$port.log"
      for _ in $(seq 1 50); do
        ping_ok && break
        sleep 0.1
      done
      ping_ok || { echo "redis-server did not start on port $port" >&2; exit 1; }
      echo "started redis-server on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    fi
    echo "export FASTREQ_REDIS_URL=redis://127.0.0.1:$port/"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      rm -f "$pidfile"
      echo "stopped redis-server on port $port"
    else
      echo "no redis-server started by this script on port $port"
    fi
    ;;
  *)
    echo "usage: $0 start|stop [PORT]" >&2
    exit 2
    ;;
esac
