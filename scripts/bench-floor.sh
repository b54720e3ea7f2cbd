#!/usr/bin/env bash
# The transport floor under the end-to-end benchmark (scripts/bench-e2e.sh):
# the same WebSocket frames, library and loopback, with a relay that
# answers each action with an ack to its sender and an event to every
# member of its room and does nothing else (no sequencing, no log, no
# checks; scripts/floor). Prints one line per run: acked/s, delivered
# events/s, ack p50/p99/max ms, and the CPU (cores) of the load (over its
# sending window) and of the relay (over the whole load command).
#
#   scripts/bench-floor.sh SHAPE RATE [DURATION]
#     SHAPE: duel (200 connections, rooms of 2) | crowd (1000, rooms of 10)
#     RATE:  actions/s per connection
set -euo pipefail
shape=${1:?shape}; rate=${2:?rate}; duration=${3:-10s}
case $shape in
  duel) conns=200; group=2 ;;
  crowd) conns=1000; group=10 ;;
  *) echo "shape: duel or crowd" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
go build -o "$dir/floor" ./scripts/floor
"$dir/floor" relay --addr "127.0.0.1:$port" --group "$group" &
pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
c0=$(cpu "$pid"); t0=$(date +%s.%N)
out=$("$dir/floor" load --url "ws://127.0.0.1:$port/ws" --conns "$conns" --rate "$rate" --duration "$duration")
c1=$(cpu "$pid"); t1=$(date +%s.%N)
echo "$shape $out cpu_relay=$(python3 -c "print(f'{($c1-$c0)/$(getconf CLK_TCK)/($t1-$t0):.2f}')")"
