#!/usr/bin/env bash
# bench/aggregate.sh — what a 3-backend aggregate costs next to a plain 1-backend proxy route.
#
# One nginx backend (one worker) serves three small JSON documents on three ports: a user, their
# orders, their recommendations (the bodies of bench/aggregate_test.go). One Gatehouse has the two
# routes of that Go benchmark: /proxy/users/{id}, proxied to the users service, and
# /dashboard/{id}, an aggregate that calls all three services in parallel and merges the JSON
# (all three calls required here, so a failed call is a 5xx that wrk counts, not a degraded
# 200); "aggregate-mobile" is the same aggregate shaped by its mobile profile. nginx has no JSON
# aggregation; for reference the script also runs nginx as a plain proxy to the users service
# and "nginx-ssi": the same three calls as SSI subrequests pasted into a JSON template — text
# concatenation with no parsing, validation, shaping or per-call failure handling, so the
# cheapest 3-call fan-out nginx can do, not an equivalent. wrk drives each variant in
# interleaved rounds; for every run the script records req/s, p99, the gateway's CPU time per
# request, the backend's CPU time per request and how many backend requests each request made
# (from the backend's stub_status).
#
# Usage: bench/aggregate.sh [--quick]
# Environment: DURATION (10s) ROUNDS (3) CONNS (64) THREADS (2) WARMUP (2s) PAUSE (1)
#              VARIANTS ("proxy aggregate aggregate-mobile nginx-proxy nginx-ssi")
#              GATEHOUSE_ACCESS_LOG (on: buffered JSON to a file, as in run.sh; off)
#              GATEHOUSE_BIN (a prebuilt gatehouse) KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=aggregate.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"
if ((quick)); then
	DURATION=${DURATION:-3s}
	ROUNDS=${ROUNDS:-1}
	WARMUP=${WARMUP:-1s}
fi
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
PAUSE=${PAUSE:-1}
VARIANTS=${VARIANTS:-proxy aggregate aggregate-mobile nginx-proxy nginx-ssi}
GATEHOUSE_ACCESS_LOG=${GATEHOUSE_ACCESS_LOG:-on}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}

need nginx wrk curl go getconf timeout awk
for v in ROUNDS CONNS THREADS PAUSE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+[sm]?$ ]] || die "DURATION must look like 10s, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[sm]?$ ]] || die "WARMUP must look like 2s, got '$WARMUP'"
((ROUNDS >= 1 && CONNS >= THREADS && THREADS >= 1)) || die "need ROUNDS >= 1 and CONNS >= THREADS >= 1"
[[ $GATEHOUSE_ACCESS_LOG == on || $GATEHOUSE_ACCESS_LOG == off ]] || die "GATEHOUSE_ACCESS_LOG must be on or off"
read -r -a variants <<<"$VARIANTS"
use_gh=0 use_ng=0
for v in "${variants[@]}"; do
	case "$v" in
	proxy | aggregate | aggregate-mobile) use_gh=1 ;;
	nginx-proxy | nginx-ssi) use_ng=1 ;;
	*) die "unknown variant $v (proxy, aggregate, aggregate-mobile, nginx-proxy, nginx-ssi)" ;;
	esac
done
dur_s=$(seconds "$DURATION")
warm_s=$(seconds "$WARMUP")
clk_tck=$(getconf CLK_TCK)

make_tmp aggregate

((use_gh)) && gatehouse_build "$tmp/gatehouse"

# --- backend: three JSON services (one nginx worker, three ports) and a stub_status port.
user_json='{"id":"7","name":"Ada Lovelace","email":"ada@example.com","plan":"pro","address":{"city":"London","zip":"N1"}}'
orders_json='[{"id":"o1","total":42.5,"status":"shipped"},{"id":"o2","total":9.99,"status":"processing"},{"id":"o3","total":120,"status":"delivered"}]'
recs_json='[{"product_id":"p2","score":0.91},{"product_id":"p3","score":0.74},{"product_id":"p9","score":0.51}]'
users_port=$(free_port)
orders_port=$(free_port)
recs_port=$(free_port)
status_port=$(free_port)
json_server() {
	printf '    server {\n        listen 127.0.0.1:%s;\n        default_type application/json;\n        location / { return 200 '"'"'%s'"'"'; }\n    }\n' "$1" "$2"
}
nginx_start "$tmp/backend" "$(json_server "$users_port" "$user_json")
$(json_server "$orders_port" "$orders_json")
$(json_server "$recs_port" "$recs_json")
    server { listen 127.0.0.1:$status_port; location / { stub_status; } }"
backend_pid=$nginx_pid
wait_http "http://127.0.0.1:$users_port/users/7"
nginx_workers "$backend_pid"
backend_workers=("${got_workers[@]}")
log "backend nginx: users :$users_port, orders :$orders_port, recs :$recs_port (worker ${backend_workers[*]})"

# backend_requests prints the backend's request counter (stub_status counts itself, too).
backend_requests() {
	curl -fsS -m 2 "http://127.0.0.1:$status_port/" | awk 'NR == 3 { print $3 }'
}

# --- gatehouse: the routes of bench/aggregate_test.go.
declare -A port=() mpids=() path=() hdr=()
if ((use_gh)); then
	gh_port=$(free_port)
	access="{ output: $tmp/gatehouse-access.log }"
	[[ $GATEHOUSE_ACCESS_LOG == off ]] && access="{ enabled: false }"
	cat >"$tmp/gatehouse.yaml" <<EOF
version: 1
listeners: [{ name: public, address: "127.0.0.1:$gh_port" }]
server: { access_log: $access }
services:
  - { name: users, targets: [{ url: "http://127.0.0.1:$users_port" }], pool: { max_idle_per_target: 256 } }
  - { name: orders, targets: [{ url: "http://127.0.0.1:$orders_port" }], pool: { max_idle_per_target: 256 } }
  - { name: recs, targets: [{ url: "http://127.0.0.1:$recs_port" }], pool: { max_idle_per_target: 256 } }
routes:
  - name: proxy
    match: { path: "/proxy/users/{id}" }
    service: users
    rewrite: "/users/{id}"
  - name: dashboard
    match: { path: "/dashboard/{id}" }
    aggregate:
      timeout: 2s
      calls:
        - { name: user, service: users, path: "/users/{id}", required: true }
        - { name: recent_orders, service: orders, path: "/users/{id}/orders?limit=5", required: true }
        - { name: recommendations, service: recs, path: "/users/{id}/recommendations", required: true }
      profiles:
        - name: mobile
          match: { headers: { X-Client-Type: mobile } }
          calls:
            user: { select: [id, name] }
            recent_orders: { select: [id], limit: { ".": 2 } }
            recommendations: { limit: { ".": 1 } }
EOF
	gatehouse_start "$tmp/gatehouse" "$tmp/gatehouse.yaml" "$tmp/gatehouse"
	wait_http "http://127.0.0.1:$gh_port/proxy/users/7"
	for v in proxy aggregate aggregate-mobile; do port[$v]=$gh_port mpids[$v]=$gh_pid; done
	log "gatehouse on :$gh_port (pid $gh_pid)"
fi

# --- nginx: a plain proxy route and the SSI template.
if ((use_ng)); then
	ng_port=$(free_port)
	up() { printf '    upstream %s { server 127.0.0.1:%s; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }\n' "$1" "$2"; }
	nginx_start "$tmp/nginx" "$(up users "$users_port")
$(up orders "$orders_port")
$(up recs "$recs_port")
    server {
        listen 127.0.0.1:$ng_port;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        location /proxy/users/ {
            rewrite ^/proxy(/users/.*)\$ \$1 break;
            proxy_pass http://users;
        }
        # SSI: three subrequests, run in parallel, their bodies pasted into the template in order.
        location ~ ^/dashboard/([^/]+)\$ {
            set \$uid \$1;
            ssi on;
            ssi_types application/json;
            default_type application/json;
            return 200 '{\"user\":<!--# include virtual=\"/_agg/users/\$uid\" -->,\"recent_orders\":<!--# include virtual=\"/_agg/orders/\$uid\" -->,\"recommendations\":<!--# include virtual=\"/_agg/recs/\$uid\" -->}';
        }
        location /_agg/users/ { internal; rewrite ^/_agg/users/(.*)\$ /users/\$1 break; proxy_pass http://users; }
        location /_agg/orders/ { internal; rewrite ^/_agg/orders/(.*)\$ /users/\$1/orders?limit=5 break; proxy_pass http://orders; }
        location /_agg/recs/ { internal; rewrite ^/_agg/recs/(.*)\$ /users/\$1/recommendations break; proxy_pass http://recs; }
    }"
	wait_http "http://127.0.0.1:$ng_port/proxy/users/7"
	nginx_workers "$nginx_pid"
	for v in nginx-proxy nginx-ssi; do port[$v]=$ng_port mpids[$v]="${got_workers[*]}"; done
	log "nginx on :$ng_port (worker(s) ${got_workers[*]})"
fi

path=([proxy]=/proxy/users/7 [aggregate]=/dashboard/7 [aggregate-mobile]=/dashboard/7
	[nginx-proxy]=/proxy/users/7 [nginx-ssi]=/dashboard/7)
hdr=([aggregate-mobile]="X-Client-Type: mobile")
# The 1-backend variant each one is compared with.
declare -A base=([proxy]=proxy [aggregate]=proxy [aggregate-mobile]=proxy [nginx-proxy]=nginx-proxy [nginx-ssi]=nginx-proxy)

# verify V checks the variant's answer: the user for the proxies; all three documents merged
# (shaped for mobile) for the aggregates; and that each request made the expected backend calls.
verify() {
	local v=$1 url body h0 h1 n want=3 headers
	url="http://127.0.0.1:${port[$v]}${path[$v]}"
	local -a args=()
	[[ -n ${hdr[$v]:-} ]] && args=(-H "${hdr[$v]}")
	h0=$(backend_requests)
	body=$(curl -fsS -m 5 -D "$tmp/$v.headers" "${args[@]}" "$url") || die "$v: GET $url failed"
	h1=$(backend_requests)
	headers=$(tr -d '\r' <"$tmp/$v.headers")
	grep -qi '^X-Gatehouse-Degraded:' <<<"$headers" && die "$v: degraded answer: $headers"
	case "$v" in
	proxy | nginx-proxy)
		want=1
		[[ $body == "$user_json" ]] || die "$v: body is not the user document: $body"
		;;
	aggregate | nginx-ssi)
		for s in '"user":{' '"Ada Lovelace"' '"email":"ada@example.com"' '"recent_orders":[' '"o3"' '"recommendations":[' '"p9"'; do
			[[ $body == *"$s"* ]] || die "$v: answer lacks $s: $body"
		done
		;;
	aggregate-mobile)
		for s in '"user":{' '"Ada Lovelace"' '"o2"' '"p2"'; do
			[[ $body == *"$s"* ]] || die "$v: answer lacks $s: $body"
		done
		for s in email o3 p3; do
			[[ $body != *"$s"* ]] || die "$v: the mobile profile should have removed $s: $body"
		done
		;;
	esac
	n=$((h1 - h0 - 1))
	((n == want)) || die "$v: made $n backend requests, want $want"
	printf '%s' "$body" >"$tmp/$v.body"
	log "$v: GET ${path[$v]}${hdr[$v]:+ with ${hdr[$v]}} → ${#body} bytes from $want backend call(s): verified"
}
for v in "${variants[@]}"; do verify "$v"; done

run_wrk() {
	local v=$1 d=$2 out=$3
	local -a args=()
	[[ -n ${hdr[$v]:-} ]] && args=(-H "${hdr[$v]}")
	run_bounded $(($(seconds "$d") + 30)) "$out" wrk -t"$THREADS" -c"$CONNS" -d"$d" --timeout 5s --latency "${args[@]}" \
		"http://127.0.0.1:${port[$v]}${path[$v]}"
}

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
csv="$RESULTS_DIR/aggregate-$stamp.csv"
echo "time,round,variant,requests,rps,p99_ms,proxy_cpu_us_per_req,backend_cpu_us_per_req,backend_calls_per_req,errors" >"$csv"

est=$(((dur_s + PAUSE) * ROUNDS * ${#variants[@]} + (warm_s + PAUSE) * ${#variants[@]}))
log "warm-up $WARMUP per variant, then $ROUNDS round(s) x ${#variants[@]} variant(s) x $DURATION (wrk -t$THREADS -c$CONNS); about ${est}s"
for v in "${variants[@]}"; do
	run_wrk "$v" "$WARMUP" "$tmp/warmup-$v.txt" || die "warm-up of $v: wrk failed: $(tail -n 3 "$tmp/warmup-$v.txt" | tr '\n' ' ')"
	sleep "$PAUSE"
done

errors=0
for ((r = 1; r <= ROUNDS; r++)); do
	for v in "${variants[@]}"; do
		out="$tmp/wrk-$r-$v.txt"
		read -r -a mp <<<"${mpids[$v]}"
		c0=$(cpu_ticks_sum "${mp[@]}")
		b0=$(cpu_ticks_sum "${backend_workers[@]}")
		q0=$(backend_requests)
		run_wrk "$v" "$DURATION" "$out" || die "round $r $v: wrk failed: $(tail -n 3 "$out" | tr '\n' ' ')"
		c1=$(cpu_ticks_sum "${mp[@]}")
		b1=$(cpu_ticks_sum "${backend_workers[@]}")
		q1=$(backend_requests)
		kill -0 "${mp[0]}" 2>/dev/null || die "$v: the gateway exited during round $r"
		read -r n rps _ p99 serr non2xx <<<"$(wrk_parse "$out")"
		((n > 0)) || die "round $r $v: wrk completed no requests"
		row_csv=$(awk -v c=$((c1 - c0)) -v b=$((b1 - b0)) -v q=$((q1 - q0 - 1)) -v hz="$clk_tck" -v n="$n" \
			'BEGIN { printf "%.1f,%.1f,%.3f", c / hz * 1e6 / n, b / hz * 1e6 / n, q / n }')
		echo "$(date +%H:%M:%S),$r,$v,$n,$rps,$p99,$row_csv,$((serr + non2xx))" >>"$csv"
		IFS=, read -r cpu bcpu calls <<<"$row_csv"
		log "round $r/$ROUNDS $v: $rps req/s, p99 ${p99}ms, gateway ${cpu} CPU µs/req, backend ${bcpu} µs/req, $calls backend calls/req, $((serr + non2xx)) errors"
		((serr + non2xx == 0)) || errors=1
		sleep "$PAUSE"
	done
done

# --- report.
report=$(
	printf 'aggregate benchmark %s — nproc %s, %s, wrk -t%s -c%s -d%s, %s round(s), gatehouse access log %s, median (min–max)\n' \
		"$(date '+%Y-%m-%d %H:%M %Z')" "$(nproc)" "$(uname -r)" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS" "$GATEHOUSE_ACCESS_LOG"
	row 17 variant 9 "calls/req" 22 "req/s" 26 "p99 ms" 24 "gateway CPU µs/req" 22 "backend CPU µs/req" 22 "CPU vs 1-backend" 6 errors
	for v in "${variants[@]}"; do
		read -r rm rlo rhi <<<"$(col "$v" 5 | mmm)"
		read -r pm plo phi <<<"$(col "$v" 6 | mmm)"
		read -r cm clo chi <<<"$(col "$v" 7 | mmm)"
		read -r bm blo bhi <<<"$(col "$v" 8 | mmm)"
		read -r qm _ _ <<<"$(col "$v" 9 | mmm)"
		errs=$(col "$v" 10 | awk '{ s += $1 } END { print s + 0 }')
		rel="n/a"
		b=${base[$v]}
		if [[ $b == "$v" ]]; then
			rel="1.00x (reference)"
		elif [[ " ${variants[*]} " == *" $b "* ]]; then
			read -r bcm _ _ <<<"$(col "$b" 7 | mmm)"
			rel=$(awk -v a="$cm" -v b="$bcm" 'BEGIN { printf "%.2fx (%+.1f µs)", a / b, a - b }')
		fi
		row 17 "$v" 9 "$(awk -v q="$qm" 'BEGIN { printf "%.2f", q }')" 22 "$(fmt "$rm" "$rlo" "$rhi" "%.0f")" \
			26 "$(fmt "$pm" "$plo" "$phi" "%.2f")" 24 "$(fmt "$cm" "$clo" "$chi" "%.1f")" \
			22 "$(fmt "$bm" "$blo" "$bhi" "%.1f")" 22 "$rel" 6 "$errs"
	done
	printf 'proxy, aggregate, aggregate-mobile: Gatehouse (1 backend call; 3 calls merged; 3 calls merged and shaped by the mobile profile).\n'
	printf 'nginx has no JSON aggregation: nginx-ssi pastes 3 SSI subrequests into a JSON template (no parsing, validation, shaping or failure defaults), a floor, not an equivalent.\n'
	printf 'CPU vs 1-backend: gateway CPU µs/req over the same server'"'"'s 1-backend proxy route. calls/req: backend requests per request (stub_status). Raw rounds: %s\n' "$csv"
)
echo
echo "$report"
echo "$report" >"$RESULTS_DIR/aggregate-$stamp.txt"
((errors == 0)) || { echo "aggregate.sh: some runs had errors (non-2xx or socket errors)" >&2; exit 3; }
