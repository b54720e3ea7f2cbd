#!/usr/bin/env bash
# End-to-end benchmark: `gameserver loadtest` against `gameserver serve` on
# this machine, with the in-memory log or Redis (AOF everysec, its own
# redis-server on a free loopback port in a temp dir). Prints one line per
# run: shape, log, rate, acked/s, delivered events/s, ack p50/p99 ms,
# violations, the CPU (cores) of server, Redis and bots, and the peak RSS
# (MiB) of server and Redis.
#
#   scripts/bench-e2e.sh SHAPE LOG RATE [DURATION [WINDOW]]
#     SHAPE:  duel (200 bots, 100 rooms) | crowd (1000 bots, 100 rooms)
#     LOG:    memory | redis
#     RATE:   actions/s per bot (0: as fast as acks allow)
#     WINDOW: most actions a bot has in flight (default 16)
#   SERVER_GOMAXPROCS / BOTS_GOMAXPROCS, when set, are the GOMAXPROCS of the
#   server and of the bots.
set -euo pipefail
shape=${1:?shape}; logkind=${2:?log}; rate=${3:?rate}; duration=${4:-10s}; window=${5:-16}
case $shape in
  duel) bots=200; rooms=100 ;;
  crowd) bots=1000; rooms=100 ;;
  *) echo "shape: duel or crowd" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime+stime, clock ticks
rss() { awk '/VmHWM/{print int($2/1024)}' "/proc/$1/status"; }
bin=$dir/gameserver
go build -o "$bin" ./cmd/gameserver
args=()
if [ "$logkind" = redis ]; then
  rport=$(freeport)
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec --save '' --logfile "$dir/redis.log" &
  rpid=$!; disown "$rpid"; pids+=("$rpid")
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  args=(--redis "redis://127.0.0.1:$rport/0")
fi
port=$(freeport)
env ${SERVER_GOMAXPROCS:+GOMAXPROCS=$SERVER_GOMAXPROCS} "$bin" serve --addr "127.0.0.1:$port" --rate-limit 0 --max-conns-per-ip 100000 --log-level warn "${args[@]}" 2>"$dir/serve.log" &
spid=$!; disown "$spid"; pids+=("$spid")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
s0=$(cpu "$spid"); r0=0; [ "$logkind" = redis ] && r0=$(cpu "$rpid")
t0=$(date +%s.%N)
env ${BOTS_GOMAXPROCS:+GOMAXPROCS=$BOTS_GOMAXPROCS} "$bin" loadtest --url "ws://127.0.0.1:$port/ws" --bots "$bots" --rooms "$rooms" --rate "$rate" --window "$window" --duration "$duration" --json "$dir/report.json" ${BOTS_CPUPROFILE:+--cpuprofile "$BOTS_CPUPROFILE"} >/dev/null 2>&1 || true
t1=$(date +%s.%N)
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^lasthit_log_(append_latency_seconds|append_batch_mean|appends_total)' || true
s1=$(cpu "$spid"); r1=0; [ "$logkind" = redis ] && r1=$(cpu "$rpid")
srss=$(rss "$spid"); rrss=0; [ "$logkind" = redis ] && rrss=$(rss "$rpid")
hz=$(getconf CLK_TCK)
if [ "$logkind" = redis ]; then
  # Redis's own account of the append script: calls and µs per call.
  redis-cli -p "$rport" info commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' | sed 's/^cmdstat_evalsha:/redis evalsha /' || true
  redis-cli -p "$rport" info errorstats | tr -d '\r' | grep '^errorstat' || true
fi
python3 - "$dir/report.json" "$shape" "$logkind" "$rate/w$window" "$s0" "$s1" "$r0" "$r1" "$hz" "$srss" "$rrss" "$t0" "$t1" <<'PY'
import json, sys
f, shape, log, rate, s0, s1, r0, r1, hz, srss, rrss, t0, t1 = sys.argv[1:]
r = json.load(open(f))
# Server and Redis CPU are averaged over the whole load test (join, act,
# drain); the bots' own CPU is the report's, over the acting window.
span = max(float(t1) - float(t0), 1e-9)
print(f'{shape} {log} rate={rate} acked/s={r["acked_per_sec"]:.0f} delivered/s={r["events_delivered_per_sec"]:.0f} '
      f'ack_ms p50={r["ack_latency_ms"]["p50"]:.3f} p99={r["ack_latency_ms"]["p99"]:.3f} violations={r["violations"]} '
      f'cpu_server={(float(s1)-float(s0))/float(hz)/span:.2f} cpu_redis={(float(r1)-float(r0))/float(hz)/span:.2f} cpu_bots={r["load_cpu_cores"]:.2f} '
      f'rss_server_mib={srss} rss_redis_mib={rrss}')
PY
