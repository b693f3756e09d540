#!/usr/bin/env bash
# bench/run.sh — compare Gatehouse with nginx and a bare Go httputil.ReverseProxy on loopback.
#
# One nginx backend answers every request with a tiny body. Proxies sit in front of it: nginx,
# baseline (a bare ReverseProxy), gatehouse, and on request nginx_full (nginx configured to do
# the work Gatehouse's plain route does: request ID, forwarding headers, security headers, a
# buffered JSON access log), gatehouse_bare (Gatehouse with its access log and security headers
# off), gatehouse1p (Gatehouse with GOMAXPROCS=1, one core like nginx's one worker), core
# (bench/core: Gatehouse's own HTTP/1.1 server and upstream client with nothing between them,
# the cost of the http.Handler contract alone) and floor
# (bench/floor: the cheapest Go forwarder, a reference for what the runtime and kernel cost;
# floor_nc is the same through net.Conn's Read and Write instead of internal/sockio's raw system
# calls; floor_spin is floor with FLOOR_SPIN of busy work per request). In interleaved rounds wrk
# drives each proxy in turn; for every run
# the script records req/s, p99 latency, the proxy's own CPU time per request, and the backend's CPU
# time per request in the same run. See bench/README.md for what the figures mean.
#
# Usage: bench/run.sh [--quick]
# Environment: DURATION (10s) ROUNDS (5) CONNS (64) THREADS (2) WARMUP (2s) PAUSE (1)
#              PROXIES ("nginx baseline gatehouse"; also nginx_full, gatehouse_bare, gatehouse1p, core, floor, floor_nc, floor_spin,
#              gatehouse_b, gatehouse_b1p)
#              FLOOR_SPIN (9us: the user CPU time floor_spin adds per request; set it to Gatehouse's user
#              time less floor's, from the CSV, to see the kernel cost of that much user time)
#              KEEP_TMP (0) RESULTS_DIR (bench/results)
#              BASELINE_ARGS (extra flags for bench/baseline, e.g. "-buffer-pool" for pooled copy buffers)
#              GATEHOUSE_BIN (use this gatehouse binary instead of building ./cmd/gatehouse)
#              GATEHOUSE_B_BIN (a second gatehouse binary, run as proxy "gatehouse_b" with the same
#              config, and "gatehouse_b1p" on one core: A/B of two builds in one interleaved run)
#              ROUTE (plain: one bare /** route; realistic: the route also checks an HS256 JWT and a
#              memory rate limit that never denies, with metrics and the access log on)
set -euo pipefail
BENCH_NAME=run.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"

if ((quick)); then
	DURATION=${DURATION:-3s}
	ROUNDS=${ROUNDS:-1}
	WARMUP=${WARMUP:-1s}
fi
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
PAUSE=${PAUSE:-1}
PROXIES=${PROXIES:-nginx baseline gatehouse}
KEEP_TMP=${KEEP_TMP:-0}
ROUTE=${ROUTE:-plain}
read -r -a baseline_args <<<"${BASELINE_ARGS:-}"

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}

# --- preflight -------------------------------------------------------------------------------

# need dies in the subshell, so the note about a running apt install can follow its message.
if ! (need nginx wrk curl go getconf ps); then
	if [[ -f /tmp/apt.log ]] && ! grep -q '^done' /tmp/apt.log; then
		echo "  note: /tmp/apt.log shows an apt install that may still be running; wait and retry" >&2
	fi
	exit 1
fi
for v in ROUNDS CONNS THREADS PAUSE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION must look like 10s, 2m or 30, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "WARMUP must look like 2s, got '$WARMUP'"
((ROUNDS >= 1)) || die "ROUNDS must be at least 1"
((CONNS >= THREADS)) || die "CONNS ($CONNS) must be >= THREADS ($THREADS)"
[[ $ROUTE == plain || $ROUTE == realistic ]] || die "ROUTE must be plain or realistic, got '$ROUTE'"
for p in $PROXIES; do
	case "$p" in nginx | nginx_full | baseline | gatehouse | gatehouse_bare | gatehouse1p | core | floor | floor_nc | floor_spin) ;;
	gatehouse_b | gatehouse_b1p)
		[[ -x ${GATEHOUSE_B_BIN:-} ]] || die "PROXIES has $p: set GATEHOUSE_B_BIN to the second gatehouse binary"
		;;
	*) die "unknown proxy in PROXIES: $p" ;;
	esac
done

clk_tck=$(getconf CLK_TCK)
dur_s=$(seconds "$DURATION")
warm_s=$(seconds "$WARMUP")
read -r -a proxies <<<"$PROXIES"

# --- process bookkeeping and cleanup -----------------------------------------------------------

# lib.sh's cleanup stops every process recorded in pids and extra_pids, and a running wrk.
make_tmp run

# --- helpers ---------------------------------------------------------------------------------

# wait_ready URL PID NAME waits up to 15s for URL to answer 200 (with the run's auth header) while
# PID stays alive; unlike lib.sh's wait_http it returns 1 instead of dying, so one broken proxy
# only skips that proxy.
wait_ready() {
	local url=$1 pid=$2 name=$3 i
	for ((i = 0; i < 150; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited during startup"
			return 1
		fi
		if curl -fsS -o /dev/null -m 1 "${auth_args[@]}" "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "$name did not answer $url within 15s"
	return 1
}

# --- build ---------------------------------------------------------------------------------

declare -A proxy_port=() proxy_pid=() failed=()

log "building baseline (go build)"
# build NAME PKG builds PKG into $tmp/NAME, retrying once: a build cache shared with concurrent
# builds has been seen to fail transiently ("could not import reflect (open : no such file...)").
build() {
	local name=$1 pkg=$2 try
	for try in 1 2; do
		if (cd "$repo_dir" && go build -trimpath -o "$tmp/$name" "$pkg") >"$tmp/build-$name.log" 2>&1; then
			return 0
		fi
		((try == 1)) && log "building $name failed; retrying once: $(tr '\n' ' ' <"$tmp/build-$name.log")" && sleep 2
	done
	failed[$name]="build failed: $(tr '\n' ' ' <"$tmp/build-$name.log")"
}
build baseline ./bench/baseline
[[ " $PROXIES " =~ \ floor(_nc|_spin)?\  ]] && build floor ./bench/floor
[[ " $PROXIES " == *" core "* ]] && build core ./bench/core
if [[ -n ${GATEHOUSE_BIN:-} ]]; then
	gatehouse_build "$tmp/gatehouse" # dies if GATEHOUSE_BIN is not an executable file
elif ! (gatehouse_build "$tmp/gatehouse"); then
	# In a subshell, so a failed build only skips gatehouse instead of ending the run.
	failed[gatehouse]="build failed: $(tr '\n' ' ' <"$tmp/gatehouse.build.log")"
fi
if [[ " $PROXIES " == *" gatehouse_b "* || " $PROXIES " == *" gatehouse_b1p "* ]]; then
	cp "$GATEHOUSE_B_BIN" "$tmp/gatehouse_b"
	log "gatehouse_b: using $GATEHOUSE_B_BIN"
fi

# With ROUTE=realistic every request carries a JWT (to every proxy alike; only Gatehouse checks
# it), signed with a throw-away secret that Gatehouse reads from the environment.
auth_args=()
if [[ $ROUTE == realistic && -z ${failed[gatehouse]:-} ]]; then
	export BENCH_JWT_SECRET="bench-secret-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
	token=$("$tmp/gatehouse" token -iss bench -aud bench -sub bench-user -ttl 2h -secret-env BENCH_JWT_SECRET) ||
		die "gatehouse token failed"
	auth_args=(-H "Authorization: Bearer $token")
fi

# --- backend -------------------------------------------------------------------------------

plain_backend_start

# --- proxies -------------------------------------------------------------------------------

start_proxy() {
	local name=$1 p
	p=$(free_port)
	proxy_port[$name]=$p
	case "$name" in
	nginx)
		nginx_start "$tmp/nginx" "$(nginx_proxy_body "$p" "$backend_port")"
		proxy_pid[$name]=$nginx_pid
		;;
	nginx_full)
		nginx_start "$tmp/nginx_full" "$(nginx_full_body "$p" "$backend_port" "$tmp/nginx_full/access.log")"
		proxy_pid[$name]=$nginx_pid
		;;
	floor | floor_nc | floor_spin)
		local nc=()
		[[ $name == floor_nc ]] && nc=(-netconn)
		[[ $name == floor_spin ]] && nc=(-spin "${FLOOR_SPIN:-9us}")
		"$tmp/floor" -listen "127.0.0.1:$p" -upstream "127.0.0.1:$backend_port" "${nc[@]}" >"$tmp/$name.log" 2>&1 &
		proxy_pid[$name]=$!
		pids+=("${proxy_pid[$name]}")
		;;
	core)
		"$tmp/core" -listen "127.0.0.1:$p" -upstream "127.0.0.1:$backend_port" >"$tmp/core.log" 2>&1 &
		proxy_pid[$name]=$!
		pids+=("${proxy_pid[$name]}")
		;;
	baseline)
		"$tmp/baseline" -listen "127.0.0.1:$p" -backend "$backend_url" "${baseline_args[@]}" >"$tmp/baseline.log" 2>&1 &
		proxy_pid[$name]=$!
		pids+=("${proxy_pid[$name]}")
		;;
	gatehouse | gatehouse_bare | gatehouse1p | gatehouse_b | gatehouse_b1p)
		local dir="$tmp/$name.d"
		mkdir -p "$dir"
		if [[ $name == gatehouse_bare ]]; then
			# No access log and no security headers (nor removal of the upstream's Server header):
			# what is left is what Gatehouse always does — request ID and forwarding headers.
			gatehouse_plain_yaml "$p" "$backend_url" off |
				sed 's/^server:$/server:\n  security_headers: { hsts: "off", content_type_options: "off", frame_options: "off", referrer_policy: "off", remove_upstream_headers: [] }/' \
					>"$dir/gatehouse.yaml"
		else
			gatehouse_plain_yaml "$p" "$backend_url" "$dir/access.log" >"$dir/gatehouse.yaml"
		fi
		if [[ $ROUTE == realistic ]]; then
			cat >>"$dir/gatehouse.yaml" <<'EOF'
    plugins:
      jwt: { issuers: [bench] }
      rate_limit:
        - { key: ip, limit: 100000000, per: 1s, store: memory }
auth:
  issuers:
    - { name: bench, issuer: bench, audiences: [bench], algorithms: [HS256], hmac_secret: "${BENCH_JWT_SECRET}" }
metrics: { enabled: true }
EOF
		fi
		# gatehouse1p: the same gateway on one core (GOMAXPROCS=1), as nginx runs one worker.
		local procs=${GOMAXPROCS:-}
		[[ $name == *1p ]] && procs=1
		local bin="$tmp/gatehouse"
		[[ $name == gatehouse_b || $name == gatehouse_b1p ]] && bin="$tmp/gatehouse_b"
		GOMAXPROCS=$procs "$bin" run -c "$dir/gatehouse.yaml" >"$dir/stdout.log" 2>"$dir/stderr.log" &
		proxy_pid[$name]=$!
		pids+=("${proxy_pid[$name]}")
		;;
	esac
}

# proxy_log prints the tail of a proxy's own logs, for failure reports.
proxy_log() {
	case "$1" in
	nginx | nginx_full) tail -n 5 "$tmp/$1/error.log" "$tmp/$1/stderr.log" 2>/dev/null ;;
	baseline) tail -n 5 "$tmp/baseline.log" 2>/dev/null ;;
	gatehouse | gatehouse_bare | gatehouse1p | gatehouse_b | gatehouse_b1p) tail -n 5 "$tmp/$1.d/stderr.log" "$tmp/$1.d/stdout.log" 2>/dev/null ;;
	core | floor | floor_nc | floor_spin) tail -n 5 "$tmp/$1.log" 2>/dev/null ;;
	esac
}

# verify checks that a proxy forwards a request to the backend and returns its body unchanged.
verify() {
	local name=$1 url body code
	url="http://127.0.0.1:${proxy_port[$name]}/bench/verify?x=1"
	if ! wait_ready "$url" "${proxy_pid[$name]}" "$name"; then
		code=$(curl -s -o "$tmp/$name.verify" -w '%{http_code}' -m 2 "${auth_args[@]}" "$url" 2>/dev/null || true)
		failed[$name]="no 200 from $url (last status ${code:-none}, body: $(head -c 200 "$tmp/$name.verify" 2>/dev/null | tr '\n' ' ')); log: $(proxy_log "$name" | tr '\n' ' ')"
		return 1
	fi
	body=$(curl -fsS -m 2 "${auth_args[@]}" "$url")
	if [[ $body != "ok" ]]; then
		failed[$name]="unexpected body from $url: $(printf '%q' "$body")"
		return 1
	fi
}

# measure_pids prints the PIDs whose CPU time counts as the proxy's: nginx's worker(s), or the
# Go process itself (all its threads are in its /proc/PID/stat).
measure_pids() {
	case "$1" in
	nginx | nginx_full) children "${proxy_pid[$1]}" ;;
	*) echo "${proxy_pid[$1]}" ;;
	esac
}

for name in "${proxies[@]}"; do
	[[ -n ${failed[$name]:-} ]] && continue
	start_proxy "$name"
	if verify "$name"; then
		log "$name on http://127.0.0.1:${proxy_port[$name]} (pid ${proxy_pid[$name]}): verified"
		if [[ $name == nginx* ]]; then nginx_workers "${proxy_pid[$name]}"; fi
	fi
done
for name in "${proxies[@]}"; do
	if [[ -n ${failed[$name]:-} ]]; then
		log "WARNING: $name skipped: ${failed[$name]}"
	fi
done
active=()
for name in "${proxies[@]}"; do
	[[ -z ${failed[$name]:-} ]] && active+=("$name")
done
((${#active[@]})) || die "no proxy is usable"

# --- runs ----------------------------------------------------------------------------------

# run_wrk DURATION URL OUT: runs wrk in the background (so signals stay responsive), bounded in time.
run_wrk() {
	local d=$1 url=$2 out=$3
	run_bounded $(($(seconds "$d") + 30)) "$out" wrk -t"$THREADS" -c"$CONNS" -d"$d" --timeout 5s --latency "${auth_args[@]}" "$url"
}

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
csv="$RESULTS_DIR/$stamp.csv"
echo "time,round,proxy,duration_s,threads,conns,requests,rps,p99_ms,proxy_cpu_s,proxy_cpu_us_per_req,backend_cpu_s,backend_cpu_us_per_req,proxy_over_backend_cpu,sys_idle_pct,sys_steal_pct,socket_errors,non2xx,proxy_user_us_per_req,proxy_sys_us_per_req" >"$csv"

est=$(((dur_s + PAUSE) * ROUNDS * ${#active[@]} + (warm_s + PAUSE) * ${#active[@]}))
log "warm-up ${WARMUP} per proxy, then $ROUNDS round(s) x ${#active[@]} prox(ies) x $DURATION (wrk -t$THREADS -c$CONNS); about ${est}s"

for name in "${active[@]}"; do
	run_wrk "$WARMUP" "http://127.0.0.1:${proxy_port[$name]}/bench" "$tmp/warmup-$name.txt" ||
		log "warm-up of $name: wrk exited non-zero: $(tail -n 3 "$tmp/warmup-$name.txt" | tr '\n' ' ')"
	sleep "$PAUSE"
done

for ((round = 1; round <= ROUNDS; round++)); do
	for name in "${active[@]}"; do
		[[ -n ${failed[$name]:-} ]] && continue
		out="$tmp/wrk-$round-$name.txt"
		mapfile -t ppids < <(measure_pids "$name")
		mapfile -t bpids < <(children "$backend_pid")
		((${#ppids[@]})) || die "$name: no process to measure"
		p0=$(cpu_ticks_sum "${ppids[@]}")
		pu0=$(user_ticks_sum "${ppids[@]}")
		b0=$(cpu_ticks_sum "${bpids[@]}")
		read -r -a s0 <<<"$(sys_cpu)"
		wrk_rc=0
		run_wrk "$DURATION" "http://127.0.0.1:${proxy_port[$name]}/bench" "$out" || wrk_rc=$?
		p1=$(cpu_ticks_sum "${ppids[@]}")
		pu1=$(user_ticks_sum "${ppids[@]}")
		b1=$(cpu_ticks_sum "${bpids[@]}")
		read -r -a s1 <<<"$(sys_cpu)"
		if ((wrk_rc != 0)); then
			failed[$name]="round $round: wrk exited $wrk_rc: $(tail -n 3 "$out" | tr '\n' ' ')"
			log "WARNING: $name: ${failed[$name]}"
			continue
		fi
		if ! kill -0 "${proxy_pid[$name]}" 2>/dev/null; then
			failed[$name]="round $round: process exited; log: $(proxy_log "$name" | tr '\n' ' ')"
			log "WARNING: $name: ${failed[$name]}"
			continue
		fi
		read -r requests rps _ p99 serr non2xx <<<"$(wrk_parse "$out")"
		if ((requests == 0)); then
			failed[$name]="round $round: wrk completed no requests"
			log "WARNING: $name: ${failed[$name]}"
			continue
		fi
		tot0=0 tot1=0
		for v in "${s0[@]:0:8}"; do tot0=$((tot0 + v)); done
		for v in "${s1[@]:0:8}"; do tot1=$((tot1 + v)); done
		row=$(awk -v pt=$((p1 - p0)) -v bt=$((b1 - b0)) -v hz="$clk_tck" -v n="$requests" \
			-v dt=$((tot1 - tot0)) -v di=$((s1[3] + s1[4] - s0[3] - s0[4])) -v ds=$((s1[7] - s0[7])) '
			BEGIN {
				ps = pt / hz; bs = bt / hz
				ratio = (bt > 0) ? pt / bt : 0
				idle = (dt > 0) ? 100 * di / dt : 0
				steal = (dt > 0) ? 100 * ds / dt : 0
				printf "%.2f,%.2f,%.2f,%.2f,%.3f,%.1f,%.1f", ps, ps * 1e6 / n, bs, bs * 1e6 / n, ratio, idle, steal
			}')
		usr=$(awk -v pt=$((p1 - p0)) -v ut=$((pu1 - pu0)) -v hz="$clk_tck" -v n="$requests" \
			'BEGIN { printf "%.2f,%.2f", ut / hz * 1e6 / n, (pt - ut) / hz * 1e6 / n }')
		echo "$(date +%H:%M:%S),$round,$name,$dur_s,$THREADS,$CONNS,$requests,$rps,$p99,$row,$serr,$non2xx,$usr" >>"$csv"
		IFS=, read -r _ _ _ _ _ _ _ _ _ _ cpu_req _ bcpu_req ratio idle steal _ _ <<<"$(tail -n 1 "$csv")"
		log "round $round/$ROUNDS $name: $rps req/s, p99 ${p99}ms, proxy ${cpu_req}us/req, backend ${bcpu_req}us/req, ratio $ratio, idle ${idle}% steal ${steal}%"
		if ((serr + non2xx > 0)); then
			log "WARNING: $name round $round: $serr socket errors, $non2xx non-2xx responses"
		fi
		sleep "$PAUSE"
	done
done

# --- report --------------------------------------------------------------------------------

# stats PROXY COLUMN prints "median min max" of a CSV column (1-based) over that proxy's rounds.
stats() {
	awk -F, -v p="$1" -v c="$2" 'NR > 1 && $3 == p { print $c }' "$csv" | mmm
}

# Columns of the CSV used below.
col_rps=8 col_p99=9 col_cpu=11 col_bcpu=13 col_ratio=14 col_serr=17 col_non2xx=18 col_user=19 col_sys=20

report=$(
	printf 'Gatehouse benchmark %s — nproc %s, %s, wrk -t%s -c%s -d%s, %s round(s), ROUTE=%s, median (min–max)\n' \
		"$(date '+%Y-%m-%d %H:%M %Z')" "$(nproc)" "$(uname -r)" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS" "$ROUTE"
	printf '%-13s %-26s %-22s %-24s %-24s %-22s %9s %9s %9s %6s\n' proxy "req/s" "p99 ms" "proxy CPU us/req" \
		"backend CPU us/req" "proxy/backend CPU" "req/s÷ng" "CPU÷ng" "ratio÷ng" errors
	read -r ng_rps _ _ <<<"$(stats nginx $col_rps)"
	read -r ng_cpu _ _ <<<"$(stats nginx $col_cpu)"
	read -r ng_ratio _ _ <<<"$(stats nginx $col_ratio)"
	for name in "${proxies[@]}"; do
		if ! awk -F, -v p="$name" 'NR > 1 && $3 == p { found = 1 } END { exit !found }' "$csv"; then
			printf '%-13s %s\n' "$name" "no data: ${failed[$name]:-not run}"
			continue
		fi
		read -r rm rlo rhi <<<"$(stats "$name" $col_rps)"
		read -r lm llo lhi <<<"$(stats "$name" $col_p99)"
		read -r cm clo chi <<<"$(stats "$name" $col_cpu)"
		read -r bm blo bhi <<<"$(stats "$name" $col_bcpu)"
		read -r qm qlo qhi <<<"$(stats "$name" $col_ratio)"
		errs=$(awk -F, -v p="$name" -v a=$col_serr -v b=$col_non2xx 'NR > 1 && $3 == p { s += $a + $b } END { print s + 0 }' "$csv")
		awk -v name="$name" -v rm="$rm" -v rlo="$rlo" -v rhi="$rhi" -v lm="$lm" -v llo="$llo" -v lhi="$lhi" \
			-v cm="$cm" -v clo="$clo" -v chi="$chi" -v bm="$bm" -v blo="$blo" -v bhi="$bhi" \
			-v qm="$qm" -v qlo="$qlo" -v qhi="$qhi" -v nr="${ng_rps:-nan}" -v nc="${ng_cpu:-nan}" \
			-v nq="${ng_ratio:-nan}" -v errs="$errs" -v partial="${failed[$name]:+ (stopped early)}" '
			function rel(a, b) { return (b + 0 > 0) ? sprintf("%.2fx", a / b) : "n/a" }
			BEGIN {
				printf "%-13s %-26s %-22s %-24s %-24s %-22s %9s %9s %9s %6d%s\n", name,
					sprintf("%.0f (%.0f–%.0f)", rm, rlo, rhi),
					sprintf("%.2f (%.2f–%.2f)", lm, llo, lhi),
					sprintf("%.1f (%.1f–%.1f)", cm, clo, chi),
					sprintf("%.1f (%.1f–%.1f)", bm, blo, bhi),
					sprintf("%.2f (%.2f–%.2f)", qm, qlo, qhi),
					rel(rm, nr), rel(cm, nc), rel(qm, nq), errs, partial
			}'
	done
	printf 'proxy CPU us/req split into user + system time (median):'
	for name in "${proxies[@]}"; do
		read -r um _ _ <<<"$(stats "$name" $col_user)"
		read -r sm _ _ <<<"$(stats "$name" $col_sys)"
		[[ -n $um && -n $sm ]] && printf ' %s %.1f + %.1f;' "$name" "$um" "$sm"
	done
	printf '\n'
	printf 'req/s÷ng, CPU÷ng: median req/s and proxy CPU us/req relative to nginx; ratio÷ng: proxy/backend CPU relative to nginx.\n'
	printf 'raw rounds: %s\n' "$csv"
)

echo
echo "$report"
echo "$report" >"$RESULTS_DIR/$stamp.txt"

if [[ " ${active[*]} " == *" gatehouse "* && -f $tmp/gatehouse.d/access.log ]]; then
	sleep 1.5 # the access log is flushed every second
	lines=$(wc -l <"$tmp/gatehouse.d/access.log")
	echo "gatehouse access log: $lines lines ($(du -h "$tmp/gatehouse.d/access.log" | cut -f1)); last: $(tail -n 1 "$tmp/gatehouse.d/access.log")"
fi

status=0
for name in "${proxies[@]}"; do
	if [[ -n ${failed[$name]:-} ]]; then
		echo "FAILED: $name: ${failed[$name]}" >&2
		status=3
	fi
done
exit "$status"
