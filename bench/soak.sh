#!/usr/bin/env bash
# bench/soak.sh — memory under sustained load: Gatehouse's RSS over a long wrk run, next to nginx's.
#
# The same backend and proxies as bench/run.sh (Gatehouse: one plain /** route, access log on,
# plus a loopback admin listener whose /metrics gives the goroutine count). Each proxy in turn
# is warmed up, then driven by wrk (-c CONNS) for SOAK while the script samples every INTERVAL
# the process's VmRSS and PSS (/proc/PID/status, /proc/PID/smaps_rollup), its threads and, for
# Gatehouse, go_goroutines and go_memstats_heap_inuse_bytes. For nginx it sums master and
# workers. Reports RSS at the start (after the warm-up), its maximum, at the end, and the growth:
# end minus the sample at GROWTH_FROM (after the first minute). Every sample goes to a CSV.
# Target: Gatehouse RSS ≤ 64 MiB with no growth.
#
# Usage: bench/soak.sh [--quick]
# Environment: SOAK (5m; --quick 30s) INTERVAL (5, seconds) CONNS (64) THREADS (2) WARMUP (10s)
#              GROWTH_FROM (60, seconds; half the soak if that is shorter than 2 minutes)
#              PROXIES ("gatehouse nginx") RSS_LIMIT_MIB (64) GATEHOUSE_BIN (a prebuilt gatehouse)
#              KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=soak.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"
if ((quick)); then
	SOAK=${SOAK:-30s}
	WARMUP=${WARMUP:-5s}
fi
SOAK=${SOAK:-5m}
INTERVAL=${INTERVAL:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-10s}
GROWTH_FROM=${GROWTH_FROM:-60}
PROXIES=${PROXIES:-gatehouse nginx}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-64}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}

need nginx wrk curl go timeout awk
for v in INTERVAL CONNS THREADS GROWTH_FROM RSS_LIMIT_MIB; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $SOAK =~ ^[0-9]+[smh]?$ ]] || die "SOAK must look like 5m or 300s, got '$SOAK'"
[[ $WARMUP =~ ^[0-9]+[sm]?$ ]] || die "WARMUP must look like 10s, got '$WARMUP'"
((INTERVAL >= 1 && CONNS >= THREADS && THREADS >= 1)) || die "need INTERVAL >= 1 and CONNS >= THREADS >= 1"
read -r -a proxies <<<"$PROXIES"
for p in "${proxies[@]}"; do
	case "$p" in nginx | gatehouse) ;; *) die "unknown proxy in PROXIES: $p (gatehouse, nginx)" ;; esac
done
soak_s=$(seconds "$SOAK")
warm_s=$(seconds "$WARMUP")
((soak_s >= 2 * INTERVAL)) || die "SOAK must be at least two INTERVALs"
# The growth is measured from the sample at GROWTH_FROM (the heap has settled by then); a soak
# shorter than twice that measures it from the middle instead.
ref_s=$GROWTH_FROM
((soak_s >= 2 * ref_s)) || ref_s=$((soak_s / 2 / INTERVAL * INTERVAL))
clk_tck=$(getconf CLK_TCK)

make_tmp soak

gatehouse_build "$tmp/gatehouse"

plain_backend_start

declare -A port=() mpid=()
admin_port=""
for name in "${proxies[@]}"; do
	port[$name]=$(free_port)
	case "$name" in
	nginx)
		nginx_start "$tmp/nginx" "$(nginx_proxy_body "${port[nginx]}" "$backend_port")"
		mpid[nginx]=$nginx_pid
		;;
	gatehouse)
		admin_port=$(free_port)
		mkdir -p "$tmp/gatehouse.d"
		gatehouse_plain_yaml "${port[gatehouse]}" "$backend_url" "$tmp/gatehouse.d/access.log" \
			"admin: { address: \"127.0.0.1:$admin_port\" }" >"$tmp/gatehouse.d/gatehouse.yaml"
		gatehouse_start "$tmp/gatehouse" "$tmp/gatehouse.d/gatehouse.yaml" "$tmp/gatehouse.d/gatehouse"
		mpid[gatehouse]=$gh_pid
		;;
	esac
	wait_http "http://127.0.0.1:${port[$name]}/verify"
	body=$(curl -fsS -m 2 "http://127.0.0.1:${port[$name]}/bench/verify?x=1")
	[[ $body == ok ]] || die "$name: unexpected body $(printf '%q' "$body")"
	[[ $name == nginx ]] && nginx_workers "${mpid[nginx]}"
	log "$name on :${port[$name]} (pid ${mpid[$name]}): verified"
done
if [[ -n $admin_port ]]; then
	wait_http "http://127.0.0.1:$admin_port/metrics"
	metrics=$(curl -fsS -m 2 "http://127.0.0.1:$admin_port/metrics")
	grep -q '^go_goroutines ' <<<"$metrics" || die "gatehouse /metrics has no go_goroutines"
fi

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
csv="$RESULTS_DIR/soak-$stamp.csv"
echo "proxy,t_s,rss_kib,pss_kib,threads,goroutines,heap_inuse_kib,cpu_s" >"$csv"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# sample NAME T appends one CSV row for NAME at T seconds into its soak.
sample() {
	local name=$1 t=$2 gor="" heap="" rss pss thr cpu
	local -a ps=("${mpid[$name]}")
	if [[ $name == nginx ]]; then mapfile -t -O 1 ps < <(children "${mpid[nginx]}"); fi
	read -r rss pss thr <<<"$(rss_kib "${ps[@]}")"
	cpu=$(awk -v t="$(cpu_ticks_sum "${ps[@]}")" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
	if [[ $name == gatehouse ]]; then
		read -r gor heap <<<"$(curl -fsS -m 2 "http://127.0.0.1:$admin_port/metrics" 2>/dev/null |
			awk '$1 == "go_goroutines" { g = $2 } $1 == "go_memstats_heap_inuse_bytes" { h = $2 }
				END { printf "%d %d\n", g, h / 1024 }')" || true
	fi
	echo "$name,$t,$rss,$pss,$thr,$gor,$heap,$cpu" >>"$csv"
}

est=$(((soak_s + warm_s + 4) * ${#proxies[@]}))
log "per proxy: warm-up $WARMUP, then wrk -t$THREADS -c$CONNS for $SOAK sampling every ${INTERVAL}s; about ${est}s"
declare -A wrk_out=()
for name in "${proxies[@]}"; do
	url="http://127.0.0.1:${port[$name]}/bench"
	run_bounded $((warm_s + 30)) "$tmp/warmup-$name.txt" wrk -t"$THREADS" -c"$CONNS" -d"${warm_s}s" "$url" ||
		die "warm-up of $name: wrk failed: $(tail -n 3 "$tmp/warmup-$name.txt" | tr '\n' ' ')"
	# wrk runs 2s past the last sample, so every sample (the last at SOAK) is taken under load.
	wrk_out[$name]="$tmp/wrk-$name.txt"
	timeout -k 5 $((soak_s + 40)) wrk -t"$THREADS" -c"$CONNS" -d"$((soak_s + 2))s" --timeout 5s --latency "$url" >"${wrk_out[$name]}" 2>&1 &
	bg_pid=$!
	t0=$(now_ms)
	sample "$name" 0
	for ((k = 1; k * INTERVAL <= soak_s; k++)); do
		wait_ms=$((t0 + k * INTERVAL * 1000 - $(now_ms)))
		((wait_ms <= 0)) || sleep "$(awk -v m="$wait_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
		kill -0 "$bg_pid" 2>/dev/null || die "$name: wrk ended early: $(tail -n 3 "${wrk_out[$name]}" | tr '\n' ' ')"
		kill -0 "${mpid[$name]}" 2>/dev/null || die "$name exited during the soak"
		sample "$name" $((k * INTERVAL))
		if (((k * INTERVAL) % 60 == 0)); then
			log "$name t=$((k * INTERVAL))s: RSS $(tail -n 1 "$csv" | awk -F, '{ printf "%.1f MiB", $3 / 1024 }')"
		fi
	done
	rc=0
	wait "$bg_pid" || rc=$?
	bg_pid=""
	((rc == 0)) || die "$name: wrk exited $rc: $(tail -n 3 "${wrk_out[$name]}" | tr '\n' ' ')"
	read -r _ rps _ _ serr non2xx <<<"$(wrk_parse "${wrk_out[$name]}")"
	log "$name: soak done, $rps req/s, $((serr + non2xx)) errors"
	sleep 1
done

# --- report.
# summary NAME prints "start max end ref growth growth_pct slope_mib_per_min pss_end thr_end g0 gmax gend heap_end" (MiB).
summary() {
	awk -F, -v p="$1" -v ref="$ref_s" '
		NR > 1 && $1 == p {
			t = $2; r = $3 / 1024
			if (!seen++) { start = r; g0 = $6 }
			if (r > max) max = r
			if (t >= ref && !hasref++) refv = r
			if (t >= ref) { n++; sx += t; sy += r; sxx += t * t; sxy += t * r }
			if ($6 > gmax) gmax = $6
			end = r; pss = $4 / 1024; thr = $5; gend = $6; heap = $7 / 1024
		}
		END {
			slope = (n > 1 && n * sxx - sx * sx > 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60 : 0
			printf "%.1f %.1f %.1f %.1f %+.1f %+.1f %+.2f %.1f %d %s %s %s %.1f\n", start, max, end, refv, end - refv,
				(refv > 0) ? 100 * (end - refv) / refv : 0, slope, pss, thr,
				(g0 == "" ? "-" : g0), (gmax == "" ? "-" : gmax), (gend == "" ? "-" : gend), heap
		}' "$csv"
}

report=$(
	printf 'soak benchmark %s — nproc %s, %s, wrk -t%s -c%s for %s per process after a %s warm-up, sampled every %ss; growth = end − the sample at t=%ss\n' \
		"$(date '+%Y-%m-%d %H:%M %Z')" "$(nproc)" "$(uname -r)" "$THREADS" "$CONNS" "$SOAK" "$WARMUP" "$INTERVAL" "$ref_s"
	row 10 process 9 "req/s" 14 "RSS start MiB" 12 "RSS max MiB" 12 "RSS end MiB" 16 "growth MiB (%)" 14 "slope MiB/min" 12 "PSS end MiB" 8 threads 20 "goroutines s/max/e" 6 errors
	for name in "${proxies[@]}"; do
		read -r start max end _ growth gpct slope pss thr g0 gmax gend _ <<<"$(summary "$name")"
		read -r _ rps _ _ serr non2xx <<<"$(wrk_parse "${wrk_out[$name]}")"
		gor="-"
		[[ $name == gatehouse ]] && gor="$g0/$gmax/$gend"
		row 10 "$name" 9 "${rps%.*}" 14 "$start" 12 "$max" 12 "$end" 16 "$growth ($gpct%)" 14 "$slope" 12 "$pss" 8 "$thr" 20 "$gor" 6 "$((serr + non2xx))"
	done
	if [[ " ${proxies[*]} " == *" gatehouse "* ]]; then
		read -r _ max end refv growth _ _ _ _ _ _ _ heap <<<"$(summary gatehouse)"
		awk -v max="$max" -v growth="$growth" -v refv="$refv" -v lim="$RSS_LIMIT_MIB" -v heap="$heap" 'BEGIN {
			tol = (0.05 * refv > 2) ? 0.05 * refv : 2
			printf "target (gatehouse): RSS ≤ %d MiB: %s (max %.1f); no growth (end − ref ≤ %.1f MiB, the larger of 2 MiB and 5%%): %s (%+.1f MiB); Go heap in use at the end %.1f MiB\n",
				lim, (max <= lim) ? "met" : "missed", max, tol, (growth <= tol) ? "met" : "missed", growth, heap
		}'
	fi
	printf 'nginx: master + worker(s) summed (RSS counts their shared pages twice; PSS does not). Samples: %s\n' "$csv"
)
echo
echo "$report"
echo "$report" >"$RESULTS_DIR/soak-$stamp.txt"
