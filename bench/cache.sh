#!/usr/bin/env bash
# bench/cache.sh — cache-hit throughput of Gatehouse's response cache next to nginx proxy_cache.
#
# One nginx backend answers every request with the same body (BODY_BYTES, default 1024) and
# "Cache-Control: max-age=600". Two caching proxies sit in front of it: nginx with proxy_cache
# (keys_zone in shared memory, bodies in files served from the page cache, proxy_cache_lock on)
# and Gatehouse with plugins.cache on its route (memory store). Each is warmed so that every
# request is a hit (checked through X-Cache), then wrk drives them in interleaved rounds. The
# backend's request count is checked after the runs: a benchmark that leaked misses is reported.
#
# Usage: bench/cache.sh [--quick]
# Environment: DURATION (10s) ROUNDS (3) CONNS (64) THREADS (2) BODY_BYTES (1024) PAUSE (1)
#              GATEHOUSE_ACCESS_LOG (on: buffered JSON to a file, as in run.sh; off)
#              GATEHOUSE_BIN (a prebuilt gatehouse) KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=cache.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"
if ((quick)); then
	DURATION=${DURATION:-3s}
	ROUNDS=${ROUNDS:-1}
fi
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
BODY_BYTES=${BODY_BYTES:-1024}
PAUSE=${PAUSE:-1}
GATEHOUSE_ACCESS_LOG=${GATEHOUSE_ACCESS_LOG:-on}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}


for tool in nginx wrk curl go; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install -y nginx wrk curl)"
done
for v in ROUNDS CONNS THREADS BODY_BYTES PAUSE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+s$ ]] || die "DURATION must look like 10s, got '$DURATION'"
((BODY_BYTES >= 1 && BODY_BYTES <= 1000000)) || die "BODY_BYTES must be 1..1000000"
dur_s=${DURATION%s}

make_tmp cache
# nginx workers (user nobody when run as root) must reach the proxy_cache directory.
chmod 755 "$tmp"


# --- backend: a fixed body, cacheable for 10 minutes, counting its requests in an access log.
backend_port=$(free_port)
body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
nginx_start "$tmp/backend" "    log_format n '\$request';
    server {
        listen 127.0.0.1:$backend_port;
        access_log $tmp/backend/requests.log n buffer=4k flush=100ms;
        location / {
            add_header Cache-Control \"max-age=600\";
            return 200 \"$body\";
        }
    }"
wait_http "http://127.0.0.1:$backend_port/warm"

# --- nginx with proxy_cache.
nginx_port=$(free_port)
nginx_start "$tmp/nginx" "    upstream backend { server 127.0.0.1:$backend_port; keepalive 64; }
    proxy_cache_path $tmp/nginx/cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=10m use_temp_path=off;
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache bench;
            proxy_cache_valid 200 60s;
            proxy_cache_lock on;
            add_header X-Cache \$upstream_cache_status;
        }
    }"

# --- gatehouse with plugins.cache.
gh_port=$(free_port)
if [[ -n ${GATEHOUSE_BIN:-} ]]; then
	cp "$GATEHOUSE_BIN" "$tmp/gatehouse"
else
	log "building gatehouse"
	(cd "$repo_dir" && go build -trimpath -o "$tmp/gatehouse" ./cmd/gatehouse) || die "build failed"
fi
access="{ output: $tmp/gatehouse-access.log }"
[[ $GATEHOUSE_ACCESS_LOG == off ]] && access="{ enabled: false }"
cat >"$tmp/gatehouse.yaml" <<EOF
version: 1
listeners: [{ name: public, address: "127.0.0.1:$gh_port" }]
server: { access_log: $access }
services:
  - name: backend
    targets: [{ url: "http://127.0.0.1:$backend_port" }]
routes:
  - name: all
    match: { path: "/**" }
    service: backend
    plugins:
      cache: { ttl: 60s }
EOF
"$tmp/gatehouse" run -c "$tmp/gatehouse.yaml" >"$tmp/gatehouse.out" 2>&1 &
pids+=("$!")

declare -A port=([nginx]=$nginx_port [gatehouse]=$gh_port)
path="/bench/item?id=1"
for name in nginx gatehouse; do
	url="http://127.0.0.1:${port[$name]}$path"
	wait_http "$url"
	curl -fsS -o /dev/null "$url"
	xc=$(curl -fsS -D - -o "$tmp/$name.body" "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
	[[ $xc == HIT ]] || die "$name: second request is X-Cache '$xc', not HIT"
	cmp -s "$tmp/$name.body" <(printf '%s' "$body") || die "$name: body differs from the backend's"
	log "$name on :${port[$name]} serves hits"
done
sleep 0.3
misses_before=$(wc -l <"$tmp/backend/requests.log")

mkdir -p "$RESULTS_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
csv="$RESULTS_DIR/cache-$stamp.csv"
echo "round,proxy,req_per_s,p50_ms,p99_ms" >"$csv"


declare -A sum=()
for ((r = 1; r <= ROUNDS; r++)); do
	for name in nginx gatehouse; do
		out=$(timeout $((dur_s + 30)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:${port[$name]}$path") ||
			die "wrk against $name failed"
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
		p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
		grep -q "Non-2xx" <<<"$out" && die "$name answered non-2xx during the run: $out"
		echo "$r,$name,$rps,$p50,$p99" >>"$csv"
		log "round $r $name: $rps req/s, p50 ${p50}ms, p99 ${p99}ms"
		sum[$name]=$(awk -v a="${sum[$name]:-0}" -v b="$rps" 'BEGIN {print a + b}')
		sleep "$PAUSE"
	done
done
sleep 0.3
leaked=$(($(wc -l <"$tmp/backend/requests.log") - misses_before))

{
	echo "cache-hit benchmark $stamp: body ${BODY_BYTES}B, ${ROUNDS}x${DURATION}, $CONNS conns, $THREADS wrk threads, gatehouse access log $GATEHOUSE_ACCESS_LOG, $(nproc) CPUs"
	for name in nginx gatehouse; do
		printf '%-10s mean %10.0f req/s\n' "$name" "$(awk -v s="${sum[$name]}" -v n="$ROUNDS" 'BEGIN {print s / n}')"
	done
	awk -v g="${sum[gatehouse]}" -v n="${sum[nginx]}" 'BEGIN {printf "gatehouse/nginx  %.2f\n", g / n}'
	echo "backend requests during the runs (misses): $leaked"
} | tee "$RESULTS_DIR/cache-$stamp.txt"
((leaked == 0)) || die "the benchmark measured misses, not hits"
