#!/usr/bin/env bash
# bench/ratelimit.sh — what a rate limit costs: Gatehouse with a limit next to Gatehouse without,
# and nginx's limit_req next to nginx without.
#
# One nginx backend answers every request with a tiny body. Gatehouse instances with the same
# config sit in front of it: "none" (no limit), "memory" (a global per-IP limit in the memory
# store, high enough never to deny) and, when redis-server is installed, "redis" (the same limit
# in a redis-server the script starts on a free port). The nearest nginx equivalent runs next to
# them: "nginx" is bench/run.sh's nginx proxy (1 worker, keepalive upstream) with limit_req on a
# zone keyed by $binary_remote_addr (shared memory, so the same for every worker), a rate and
# burst high enough never to deny, nodelay; "nginx-none" is the same proxy without it. All wrk
# traffic comes from 127.0.0.1, so every request checks the same key: the worst case for lock
# (or Redis key) contention. wrk drives each instance in turn, in interleaved rounds; for every
# run the script records req/s, p99, and the instance's own CPU time per request (utime+stime
# from /proc/PID/stat: the Go process, or the nginx worker). A run with a non-2xx answer (a 429,
# or nginx's 503, would mean the limit denied) fails the benchmark.
#
# Usage: bench/ratelimit.sh [--quick]
# Environment: DURATION (10s) ROUNDS (3) CONNS (64) THREADS (2) PAUSE (1)
#              VARIANTS ("none memory redis nginx-none nginx") GATEHOUSE_BIN (a prebuilt gatehouse)
#              KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=ratelimit.sh
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
PAUSE=${PAUSE:-1}
VARIANTS=${VARIANTS:-none memory redis nginx-none nginx}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}


for tool in nginx wrk curl go getconf; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install -y nginx wrk curl)"
done
for v in ROUNDS CONNS THREADS PAUSE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+s$ ]] || die "DURATION must look like 10s, got '$DURATION'"
dur_s=${DURATION%s}
read -r -a variants <<<"$VARIANTS"
if [[ " ${variants[*]} " == *" redis "* ]] && ! command -v redis-server >/dev/null 2>&1; then
	log "redis-server is not installed: skipping the redis variant"
	read -r -a variants <<<"${VARIANTS//redis/}"
fi
((${#variants[@]})) || die "no variant to run"
clk_tck=$(getconf CLK_TCK)

make_tmp ratelimit




# --- backend: nginx answering a tiny body.
backend_port=$(free_port)
mkdir -p "$tmp/backend"
cat >"$tmp/backend/nginx.conf" <<NGX
worker_processes 2;
daemon off;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp/backend/client_body;
    proxy_temp_path $tmp/backend/proxy;
    fastcgi_temp_path $tmp/backend/fastcgi;
    uwsgi_temp_path $tmp/backend/uwsgi;
    scgi_temp_path $tmp/backend/scgi;
    server { listen 127.0.0.1:$backend_port; location / { return 200 "ok\n"; } }
}
NGX
nginx -t -q -p "$tmp/backend" -e "$tmp/backend/error.log" -c "$tmp/backend/nginx.conf" || die "nginx -t failed"
nginx -p "$tmp/backend" -e "$tmp/backend/error.log" -c "$tmp/backend/nginx.conf" >"$tmp/backend/stderr.log" 2>&1 &
pids+=("$!")
wait_http "http://127.0.0.1:$backend_port/"

# --- redis-server for the redis variant.
redis_store=""
if [[ " ${variants[*]} " == *" redis "* ]]; then
	redis_port=$(free_port)
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
		--loglevel warning >"$tmp/redis.log" 2>&1 &
	pids+=("$!")
	for ((i = 0; i < 100; i++)); do
		[[ $( (exec 3<>"/dev/tcp/127.0.0.1/$redis_port" && printf 'PING\r\n' >&3 && timeout 1 head -c 5 <&3) 2>/dev/null) == "+PONG" ]] && break
		sleep 0.05
	done
	redis_store="store: { redis: { url: \"redis://127.0.0.1:$redis_port\", timeout: 1s } }"
fi

# --- gatehouse instances.
if [[ " ${variants[*]} " =~ " "(none|memory|redis)" " ]]; then
	if [[ -n ${GATEHOUSE_BIN:-} ]]; then
		cp "$GATEHOUSE_BIN" "$tmp/gatehouse"
	else
		log "building gatehouse"
		(cd "$repo_dir" && go build -trimpath -o "$tmp/gatehouse" ./cmd/gatehouse) || die "build failed"
	fi
fi
declare -A port=() pid=() mpids=()
for v in "${variants[@]}"; do
	port[$v]=$(free_port)
	store="" limits=""
	case "$v" in
	nginx | nginx-none)
		# The nginx proxy of bench/run.sh; "nginx" adds limit_req. X-Limit-Req ($limit_req_status)
		# lets the check below see that the limit ran and passed the request.
		zone="" lim=""
		if [[ $v == nginx ]]; then
			zone='    limit_req_zone $binary_remote_addr zone=perip:1m rate=100000000r/s;'
			# nginx counts the leaky bucket in milliseconds: without a burst, a second request in the
			# same millisecond is over the limit whatever the rate.
			lim='            limit_req zone=perip burst=1000000 nodelay;
            add_header X-Limit-Req $limit_req_status always;'
		fi
		nginx_start "$tmp/$v" "$(nginx_proxy_body "${port[$v]}" "$backend_port" "$zone" "$lim")"
		pid[$v]=$nginx_pid
		wait_http "http://127.0.0.1:${port[$v]}/warm"
		nginx_workers "${pid[$v]}"
		mpids[$v]="${got_workers[*]}"
		hdr=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:${port[$v]}/warm" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-limit-req"{print $2}')
		if [[ $v == nginx ]]; then [[ $hdr == PASSED ]] || die "nginx: limit_req did not pass the request (X-Limit-Req '$hdr')"; else [[ -z $hdr ]] || die "nginx-none: has a limit"; fi
		log "$v on :${port[$v]} (master ${pid[$v]}, worker(s) ${mpids[$v]}) ready"
		continue
		;;
	none) ;;
	memory) limits="rate_limits: [{ name: per-ip, key: ip, limit: 100000000, per: 1s, store: memory }]" ;;
	redis)
		store=$redis_store
		limits="rate_limits: [{ name: per-ip, key: ip, limit: 100000000, per: 1s, store: redis, on_error: fail_closed }]"
		;;
	*) die "unknown variant $v (none, memory, redis, nginx-none, nginx)" ;;
	esac
	cat >"$tmp/gatehouse-$v.yaml" <<EOF2
version: 1
listeners: [{ name: public, address: "127.0.0.1:${port[$v]}" }]
server: { access_log: { enabled: false } }
metrics: { enabled: true }
$store
$limits
services:
  - name: backend
    targets: [{ url: "http://127.0.0.1:$backend_port" }]
routes:
  - name: all
    match: { path: "/**" }
    service: backend
EOF2
	"$tmp/gatehouse" run -c "$tmp/gatehouse-$v.yaml" >"$tmp/gatehouse-$v.out" 2>&1 &
	pid[$v]=$!
	mpids[$v]=${pid[$v]}
	pids+=("${pid[$v]}")
	wait_http "http://127.0.0.1:${port[$v]}/warm"
	hdr=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:${port[$v]}/warm" | tr -d '\r' | awk -F': ' 'tolower($1)=="ratelimit"{print $2}')
	if [[ $v == none ]]; then [[ -z $hdr ]] || die "none: has a RateLimit header"; else [[ $hdr == '"per-ip";r='* ]] || die "$v: no RateLimit header (got '$hdr')"; fi
	log "$v on :${port[$v]} (pid ${pid[$v]}) ready"
done

mkdir -p "$RESULTS_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
csv="$RESULTS_DIR/ratelimit-$stamp.csv"
echo "round,variant,req_per_s,p99_ms,cpu_us_per_req" >"$csv"


declare -A rps_sum=() cpu_sum=() p99_sum=()
for ((r = 1; r <= ROUNDS; r++)); do
	for v in "${variants[@]}"; do
		read -r -a mp <<<"${mpids[$v]}"
		c0=$(cpu_ticks_sum "${mp[@]}")
		out=$(timeout $((dur_s + 30)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:${port[$v]}/bench") ||
			die "wrk against $v failed"
		c1=$(cpu_ticks_sum "${mp[@]}")
		grep -q "Non-2xx" <<<"$out" && die "$v answered non-2xx during the run: $out"
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		n=$(awk '/requests in/ {print $1}' <<<"$out")
		p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
		cpu=$(awk -v d=$((c1 - c0)) -v hz="$clk_tck" -v n="$n" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')
		echo "$r,$v,$rps,$p99,$cpu" >>"$csv"
		log "round $r $v: $rps req/s, p99 ${p99}ms, ${cpu} CPU µs/req"
		rps_sum[$v]=$(awk -v a="${rps_sum[$v]:-0}" -v b="$rps" 'BEGIN {print a + b}')
		cpu_sum[$v]=$(awk -v a="${cpu_sum[$v]:-0}" -v b="$cpu" 'BEGIN {print a + b}')
		p99_sum[$v]=$(awk -v a="${p99_sum[$v]:-0}" -v b="$p99" 'BEGIN {print a + b}')
		sleep "$PAUSE"
	done
done

{
	echo "rate-limit benchmark $stamp: ${ROUNDS}x${DURATION}, wrk -t$THREADS -c$CONNS, $(nproc) CPUs, one key (127.0.0.1), means over rounds"
	# printf pads bytes: "µ" and "×" take two, hence the wider fields in the header.
	printf '| %-10s | %10s | %8s | %12s | %10s | %10s | %15s |\n' variant "req/s" "p99 ms" "CPU µs/req" "req/s ×" "CPU ×" "limit +µs/req"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ------------ ---------- ------------- ----------- ----------- ----------------
	base=${variants[0]}
	for v in "${variants[@]}"; do
		# limit +µs/req: the CPU the limit adds over the same proxy without one.
		own=""
		case "$v" in memory | redis) own=none ;; nginx) own=nginx-none ;; esac
		[[ -n $own && -n ${cpu_sum[$own]:-} ]] || own=""
		awk -v v="$v" -v r="${rps_sum[$v]}" -v c="${cpu_sum[$v]}" -v p="${p99_sum[$v]}" -v br="${rps_sum[$base]}" -v bc="${cpu_sum[$base]}" -v n="$ROUNDS" \
			-v oc="${own:+${cpu_sum[$own]}}" \
			'BEGIN {printf "| %-10s | %10.0f | %8.2f | %11.1f | %9.2f | %9.2f | %14s |\n", v, r / n, p / n, c / n, r / br, c / bc, (oc == "") ? "-" : sprintf("%+.1f", (c - oc) / n)}'
	done
	echo "(ratios against '$base'; limit +µs/req against the same proxy without a limit: none for memory and redis, nginx-none for nginx)"
} | tee "$RESULTS_DIR/ratelimit-$stamp.txt"
