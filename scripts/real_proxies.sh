#!/usr/bin/env bash
# End-to-end proxy tests against real proxy servers on 127.0.0.1:
#   tinyproxy (HTTP forward + CONNECT) and dante (SOCKS5).
# Installs Debian's `tinyproxy` and `dante-server` when missing, starts both on free loopback
# ports, runs the `real_*` tests of tests/proxy.rs against them, and stops them on exit.
#
# Usage: scripts/real_proxies.sh [extra cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need=()
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)
command -v danted >/dev/null 2>&1 || need+=(dante-server)
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]}"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
TINYPROXY="$(command -v tinyproxy)"
DANTED="$(command -v danted)"

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports below the kernel's ephemeral range, so that no client socket of another process
# (a test or benchmark running at the same time) can be holding the port we pick.
free_port() {
  local port tries=0 low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 11000 ] || low=32768
  while [ "$tries" -lt 200 ]; do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! listening "$port"; then
      echo "$port"
      return 0
    fi
    tries=$((tries + 1))
  done
  echo "no free port found" >&2
  return 1
}

wait_listening() { # port name logfile
  local i
  for i in $(seq 1 100); do
    if listening "$1"; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not start on 127.0.0.1:$1; its log:" >&2
  cat "$3" >&2 || true
  return 1
}

http_port="$(free_port)"
socks_port="$(free_port)"
while [ "$socks_port" = "$http_port" ]; do socks_port="$(free_port)"; done

# tinyproxy: no ConnectPort lines (any one of them limits CONNECT to the listed ports).
user_lines=""
if [ "$(id -u)" -eq 0 ]; then
  user_lines=$'User nobody\nGroup nogroup'
fi
cat >"$work/tinyproxy.conf" <<EOF
Port $http_port
Listen 127.0.0.1
Timeout 60
Allow 127.0.0.1
MaxClients 100
LogLevel Info
$user_lines
EOF
"$TINYPROXY" -d -c "$work/tinyproxy.conf" >"$work/tinyproxy.log" 2>&1 &
pids+=($!)

cat >"$work/danted.conf" <<EOF
logoutput: stderr
internal: 127.0.0.1 port = $socks_port
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
EOF
# In the foreground of a background job (not -D): this script then owns the process, stops it
# by its pid and reaps it (a detached danted is left to an init that may never reap it).
"$DANTED" -f "$work/danted.conf" -p "$work/danted.pid" >"$work/danted.log" 2>&1 &
pids+=($!)

wait_listening "$http_port" tinyproxy "$work/tinyproxy.log"
wait_listening "$socks_port" danted "$work/danted.log"
echo "== tinyproxy on 127.0.0.1:$http_port (pid ${pids[0]}), danted on 127.0.0.1:$socks_port (pid ${pids[1]})"

status=0
FASTREQ_REAL_HTTP_PROXY="127.0.0.1:$http_port" \
FASTREQ_REAL_SOCKS5="127.0.0.1:$socks_port" \
  cargo test --all-features --test proxy real_ "$@" -- --include-ignored || status=$?
if [ "$status" -ne 0 ]; then
  echo "== tinyproxy log" >&2
  tail -n 50 "$work/tinyproxy.log" >&2 || true
  echo "== danted log" >&2
  tail -n 50 "$work/danted.log" >&2 || true
fi
exit "$status"
