#!/usr/bin/env bash
# bench/latency.sh — tail latency at a fixed request rate (open loop): Gatehouse next to nginx.
#
# The same backend and proxies as bench/run.sh (nginx `return 200` backend; nginx proxy with a
# keepalive upstream; Gatehouse with one plain /** route and the access log on). Instead of
# driving each proxy as fast as it goes (wrk), h2load sends RATE requests per second in total,
# whatever the answers' latency, for DURATION, and logs every request's latency; the script
# computes p50/p90/p99/p99.9/max from that log. Interleaved rounds; the table shows medians and
# min–max over rounds, and "p99 − nginx p99": the paired difference within each round.
# Target: Gatehouse p99 ≤ nginx p99 + 1 ms.
#
# Usage: bench/latency.sh [--quick]
# Environment: RATE (4000 req/s in total) CLIENTS (64 connections) DURATION (20s) ROUNDS (5)
#              WARMUP (3s at RATE per proxy before round 1) PAUSE (1) THREADS (1 h2load thread)
#              PROXIES ("nginx gatehouse") GATEHOUSE_BIN (a prebuilt gatehouse)
#              KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=latency.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"
if ((quick)); then
	DURATION=${DURATION:-5s}
	ROUNDS=${ROUNDS:-1}
	WARMUP=${WARMUP:-2s}
fi
RATE=${RATE:-4000}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-20s}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-3s}
PAUSE=${PAUSE:-1}
THREADS=${THREADS:-1}
PROXIES=${PROXIES:-nginx gatehouse}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}

need nginx h2load curl go getconf timeout awk sort
for v in RATE CLIENTS ROUNDS PAUSE THREADS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $DURATION =~ ^[0-9]+[sm]?$ ]] || die "DURATION must look like 20s or 1m, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[sm]?$ ]] || die "WARMUP must look like 3s, got '$WARMUP'"
((ROUNDS >= 1 && THREADS >= 1 && CLIENTS >= THREADS)) || die "need ROUNDS >= 1 and CLIENTS >= THREADS >= 1"
read -r -a proxies <<<"$PROXIES"
for p in "${proxies[@]}"; do
	case "$p" in nginx | gatehouse) ;; *) die "unknown proxy in PROXIES: $p (nginx, gatehouse)" ;; esac
done
dur_s=$(seconds "$DURATION")
warm_s=$(seconds "$WARMUP")
((RATE * dur_s >= CLIENTS)) || die "RATE x DURATION must be at least CLIENTS requests"
# h2load's --rps is per client (connection); fractions are fine.
per_client=$(awk -v r="$RATE" -v c="$CLIENTS" 'BEGIN { printf "%.4f", r / c }')
clk_tck=$(getconf CLK_TCK)

make_tmp latency

gatehouse_build "$tmp/gatehouse"

# --- backend and proxies (the configs of bench/run.sh, ROUTE=plain).
plain_backend_start

declare -A port=() mpids=()
start_plain_proxies mpids "${proxies[@]}"

# run_h2load NAME SECONDS LOG OUT sends RATE req/s for SECONDS to NAME, logging each request.
#
# h2load's timing mode (-D) connects all clients at once, so their --rps timers fire in step (with
# the defaults: 64 requests every 16 ms instead of one every 250 µs), and the latency is mostly the
# time to drain that burst. Rate mode (-r) connects one client per millisecond per thread, which
# spreads the clients' phases; it takes a request count (-n), so the run lasts n / RATE seconds.
run_h2load() {
	local name=$1 secs=$2 logf=$3 out=$4 n
	n=$((RATE * secs))
	# -N 10s: a connection left without an answer for 10s is given up, its requests counted as
	# errors, instead of holding the run until the timeout.
	run_bounded $((2 * secs + 30)) "$out" h2load --h1 -N 10s -t "$THREADS" -c "$CLIENTS" -r "$THREADS" --rate-period 1ms \
		--rps "$per_client" -n "$n" --log-file "$logf" "http://127.0.0.1:${port[$name]}/bench"
}

# latency_stats LOG prints "requests errors achieved_rps p50 p90 p99 p999 max" (ms) from an h2load
# --log-file (start µs since the epoch, status, latency µs). Percentiles are nearest-rank over
# the requests that got a 2xx; errors are the others.
latency_stats() {
	local f=$1 summary
	summary=$(awk -F'\t' '
		{ s = $1 + 0; e = s + $3; if (NR == 1 || s < t0) t0 = s; if (e > t1) t1 = e }
		$2 ~ /^2/ { ok++; next }
		{ bad++ }
		END { printf "%d %d %.1f", ok, bad + 0, (t1 > t0) ? ok * 1e6 / (t1 - t0) : 0 }' "$f")
	awk -F'\t' '$2 ~ /^2/ { print $3 }' "$f" | sort -n | awk -v summary="$summary" '
		{ v[NR] = $1 }
		function q(p,   i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return v[i] / 1000 }
		END {
			if (NR == 0) { printf "%s nan nan nan nan nan\n", summary; exit }
			printf "%s %.3f %.3f %.3f %.3f %.3f\n", summary, q(0.5), q(0.9), q(0.99), q(0.999), v[NR] / 1000
		}'
}

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
csv="$RESULTS_DIR/latency-$stamp.csv"
echo "time,round,proxy,target_rps,clients,requests,errors,achieved_rps,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,proxy_cpu_us_per_req,sys_idle_pct" >"$csv"

est=$(((dur_s + PAUSE) * ROUNDS * ${#proxies[@]} + (warm_s + PAUSE) * ${#proxies[@]}))
log "warm-up $WARMUP per proxy, then $ROUNDS round(s) x ${#proxies[@]} prox(ies) x $DURATION at $RATE req/s (h2load --h1 -c$CLIENTS --rps $per_client); about ${est}s"

for name in "${proxies[@]}"; do
	run_h2load "$name" "$warm_s" "$tmp/warmup-$name.log" "$tmp/warmup-$name.txt" ||
		die "warm-up of $name: h2load failed: $(tail -n 5 "$tmp/warmup-$name.txt" | tr '\n' ' ')"
	sleep "$PAUSE"
done

failed=0
for ((round = 1; round <= ROUNDS; round++)); do
	for name in "${proxies[@]}"; do
		logf="$tmp/h2load-$round-$name.log"
		out="$tmp/h2load-$round-$name.txt"
		read -r -a mp <<<"${mpids[$name]}"
		c0=$(cpu_ticks_sum "${mp[@]}")
		read -r -a s0 <<<"$(sys_cpu)"
		rc=0
		run_h2load "$name" "$dur_s" "$logf" "$out" || rc=$?
		c1=$(cpu_ticks_sum "${mp[@]}")
		read -r -a s1 <<<"$(sys_cpu)"
		if ((rc != 0)); then
			log "WARNING: round $round $name: h2load exited $rc (timeout: 124): $(grep -v '^progress' "$out" | tail -n 4 | tr '\n' ' ')"
			failed=1
		fi
		[[ -s $logf ]] || die "round $round $name: h2load wrote no latency log: $(tail -n 5 "$out" | tr '\n' ' ')"
		read -r n errs rps p50 p90 p99 p999 pmax <<<"$(latency_stats "$logf")"
		# Requests sent without an answer logged (connection errors, a cut-off run) count as errors too.
		((errs < RATE * dur_s - n)) && errs=$((RATE * dur_s - n))
		tot0=0 tot1=0
		for v in "${s0[@]:0:8}"; do tot0=$((tot0 + v)); done
		for v in "${s1[@]:0:8}"; do tot1=$((tot1 + v)); done
		read -r cpu idle <<<"$(awk -v d=$((c1 - c0)) -v hz="$clk_tck" -v n="$n" -v dt=$((tot1 - tot0)) \
			-v di=$((s1[3] + s1[4] - s0[3] - s0[4])) \
			'BEGIN { printf "%.1f %.1f\n", (n > 0) ? d / hz * 1e6 / n : 0, (dt > 0) ? 100 * di / dt : 0 }')"
		echo "$(date +%H:%M:%S),$round,$name,$RATE,$CLIENTS,$n,$errs,$rps,$p50,$p90,$p99,$p999,$pmax,$cpu,$idle" >>"$csv"
		log "round $round/$ROUNDS $name: $rps req/s, p50 ${p50}ms p99 ${p99}ms max ${pmax}ms, ${cpu} CPU µs/req, $errs errors, idle ${idle}%"
		((errs == 0)) || failed=1
		if awk -v a="$rps" -v r="$RATE" 'BEGIN { exit !(a < 0.95 * r) }'; then
			log "WARNING: $name did not keep up with $RATE req/s in round $round ($rps): requests queued in h2load, latency understated"
		fi
		rm -f "$logf" # up to a few MB per run; the CSV keeps the figures
		sleep "$PAUSE"
	done
done

# --- report.

report=$(
	printf 'latency benchmark %s — nproc %s, %s, open loop: %s req/s over h2load --h1 -c%s (--rps %s per connection), %s round(s) x %s, median (min–max)\n' \
		"$(date '+%Y-%m-%d %H:%M %Z')" "$(nproc)" "$(uname -r)" "$RATE" "$CLIENTS" "$per_client" "$ROUNDS" "$DURATION"
	row 10 proxy 22 "achieved req/s" 22 "p50 ms" 22 "p99 ms" 24 "max ms" 24 "p99 − nginx p99 ms" 20 "proxy CPU µs/req" 6 errors
	for name in "${proxies[@]}"; do
		read -r rm rlo rhi <<<"$(col "$name" 8 | mmm)"
		read -r am alo ahi <<<"$(col "$name" 9 | mmm)"
		read -r pm plo phi <<<"$(col "$name" 11 | mmm)"
		read -r xm xlo xhi <<<"$(col "$name" 13 | mmm)"
		read -r cm clo chi <<<"$(col "$name" 14 | mmm)"
		errs=$(col "$name" 7 | awk '{ s += $1 } END { print s + 0 }')
		diff="n/a"
		if [[ $name != nginx && " ${proxies[*]} " == *" nginx "* ]]; then
			# Paired within each round: this proxy's p99 minus nginx's p99 of the same round.
			read -r dm dlo dhi <<<"$(awk -F, 'NR > 1 && $3 == "nginx" { n[$2] = $11 } NR > 1 && $3 == p { g[$2] = $11 }
				END { for (r in g) if (r in n) print g[r] - n[r] }' p="$name" "$csv" | mmm)"
			diff=$(fmt "$dm" "$dlo" "$dhi" "%+.2f")
			verdict=$(awk -v d="$dm" 'BEGIN { print (d <= 1.0) ? "met" : "missed" }')
		elif [[ $name == nginx ]]; then
			diff="0 (reference)"
		fi
		row 10 "$name" 22 "$(fmt "$rm" "$rlo" "$rhi" "%.0f")" 22 "$(fmt "$am" "$alo" "$ahi" "%.2f")" \
			22 "$(fmt "$pm" "$plo" "$phi" "%.2f")" 24 "$(fmt "$xm" "$xlo" "$xhi" "%.2f")" 24 "$diff" \
			20 "$(fmt "$cm" "$clo" "$chi" "%.1f")" 6 "$errs"
	done
	slow=$(awk -F, -v r="$RATE" 'NR > 1 && $8 < 0.95 * r { n++ } END { print n + 0 }' "$csv")
	if [[ -n ${verdict:-} ]]; then
		((slow == 0)) || verdict="not judged: some runs did not keep up with the rate"
		printf 'target: gatehouse p99 ≤ nginx p99 + 1 ms (median of the per-round differences): %s\n' "$verdict"
	fi
	if ((slow > 0)); then
		printf 'WARNING: %d run(s) achieved under 95%% of %d req/s: the proxy (or the machine) did not keep up, so those latencies are understated.\n' "$slow" "$RATE"
	fi
	printf 'latency = request written to response read, per request (h2load --log-file); open loop per connection: a request due while its connection still waits for an answer is sent late, so waits above %.1f ms are understated.\n' \
		"$(awk -v r="$per_client" 'BEGIN { print 1000 / r }')"
	printf 'raw rounds: %s\n' "$csv"
)
echo
echo "$report"
echo "$report" >"$RESULTS_DIR/latency-$stamp.txt"
((failed == 0)) || { echo "latency.sh: some runs had errors or timed out (see above)" >&2; exit 3; }
