#!/usr/bin/env bash
# bench/syscalls.sh — system calls per proxied request: Gatehouse next to nginx, counted by strace.
#
# The same backend and proxies as bench/run.sh (Gatehouse: one plain /** route, access log on).
# For each proxy in turn: a warm-up without tracing; IDLE seconds of `strace -c -f` with no load
# (the background rate: timers, the access-log flush); then `strace -c -f -p` on the proxy (the
# nginx worker(s); every thread of the Go process) and, with TRACE_BACKEND=1, on the backend's
# worker at the same time, while h2load sends exactly REQUESTS requests over CLIENTS keep-alive
# connections. Reports, per syscall name, calls per request for each traced process side by
# side, failed calls (EAGAIN and the like) in parentheses, and the totals.
# strace stops the tracee at every syscall, so the runs are many times slower than normal; the
# counts are what matters, but anything driven by time (timers, batching of ready events per
# epoll_wait) shifts under it — see bench/README.md.
#
# Usage: bench/syscalls.sh [--quick]
# Environment: REQUESTS (20000; --quick 4000) CLIENTS (64) WARMUP_REQUESTS (5000) IDLE (2, seconds)
#              PROXIES ("nginx gatehouse") TRACE_BACKEND (1) GATEHOUSE_BIN (a prebuilt gatehouse)
#              KEEP_TMP (0) RESULTS_DIR (bench/results)
set -euo pipefail
BENCH_NAME=syscalls.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args "$@"
if ((quick)); then
	REQUESTS=${REQUESTS:-4000}
	WARMUP_REQUESTS=${WARMUP_REQUESTS:-2000}
fi
REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-64}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-5000}
IDLE=${IDLE:-2}
PROXIES=${PROXIES:-nginx gatehouse}
TRACE_BACKEND=${TRACE_BACKEND:-1}
KEEP_TMP=${KEEP_TMP:-0}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$bench_dir/results}

need nginx h2load strace curl go timeout awk
for v in REQUESTS CLIENTS WARMUP_REQUESTS IDLE TRACE_BACKEND; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((REQUESTS >= CLIENTS && CLIENTS >= 1)) || die "need REQUESTS >= CLIENTS >= 1"
read -r -a proxies <<<"$PROXIES"
for p in "${proxies[@]}"; do
	case "$p" in nginx | gatehouse) ;; *) die "unknown proxy in PROXIES: $p (nginx, gatehouse)" ;; esac
done

make_tmp syscalls

gatehouse_build "$tmp/gatehouse"

plain_backend_start

declare -A port=() tpids=()
start_plain_proxies tpids "${proxies[@]}"

# traced PID... succeeds when every thread of every PID has a tracer attached.
traced() {
	local pid st
	for pid in "$@"; do
		for st in /proc/"$pid"/task/*/status; do
			[[ $(awk '$1 == "TracerPid:" { print $2 }' "$st" 2>/dev/null) =~ ^[1-9] ]] || return 1
		done
	done
}

# strace_start OUT PID... attaches `strace -c -f` (all threads, and threads created later) to the
# PIDs, writing its summary to OUT when it detaches; waits until it is attached everywhere.
strace_start() {
	local out=$1 i
	shift
	local -a args=()
	for i in "$@"; do args+=(-p "$i"); done
	strace -c -f -q -o "$out" "${args[@]}" 2>>"$tmp/strace.stderr" &
	transient+=("$!")
	for ((i = 0; i < 100; i++)); do
		traced "$@" && return 0
		sleep 0.1
	done
	die "strace did not attach to $* within 10s: $(tail -n 3 "$tmp/strace.stderr" 2>/dev/null | tr '\n' ' ')"
}

# strace_stop detaches every running strace (SIGTERM: it prints its summary and lets the
# tracees run on) and reaps them.
strace_stop() {
	local pid
	for pid in "${transient[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${transient[@]}"; do wait "$pid" 2>/dev/null || true; done
	transient=()
}

# strace_table FILE prints "name calls errors" for each syscall of a `strace -c` summary.
strace_table() {
	awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4, (NF >= 6) ? $5 : 0 }' "$1"
}

h2load_ok() { awk '/^status codes:/ { print $3 + 0 }' "$1"; }

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
csv="$RESULTS_DIR/syscalls-$stamp.csv"
echo "proxy,process,syscall,calls,errors,requests,calls_per_req,errors_per_req" >"$csv"
declare -A took=() idle_rate=()
cols=() # "proxy/process" keys of the table's columns

for name in "${proxies[@]}"; do
	url="http://127.0.0.1:${port[$name]}/bench"
	read -r -a tp <<<"${tpids[$name]}"
	run_bounded 120 "$tmp/warmup-$name.txt" h2load --h1 -N 10s -n "$WARMUP_REQUESTS" -c "$CLIENTS" "$url" ||
		die "warm-up of $name: h2load failed: $(tail -n 5 "$tmp/warmup-$name.txt" | tr '\n' ' ')"
	sleep 0.5

	# Background rate: the same tracing for IDLE seconds with no requests.
	strace_start "$tmp/idle-$name.txt" "${tp[@]}"
	sleep "$IDLE"
	strace_stop
	idle_rate[$name]=$(strace_table "$tmp/idle-$name.txt" | awk -v s="$IDLE" '{ n += $2 } END { printf "%.1f", n / s }')

	strace_start "$tmp/strace-$name.txt" "${tp[@]}"
	if ((TRACE_BACKEND)); then strace_start "$tmp/strace-$name-backend.txt" "${backend_workers[@]}"; fi
	log "$name: tracing pid(s) ${tp[*]}$( ((TRACE_BACKEND)) && echo " and backend ${backend_workers[*]}"); sending $REQUESTS requests"
	t0=$(date +%s%N)
	rc=0
	# -N: a connection that sees no answer for 10s is given up (its requests count as failed)
	# rather than waited on for ever.
	run_bounded $((60 + REQUESTS / 100)) "$tmp/h2load-$name.txt" h2load --h1 -N 10s -n "$REQUESTS" -c "$CLIENTS" "$url" || rc=$?
	t1=$(date +%s%N)
	sleep 0.5 # let the closes of h2load's connections be counted too
	strace_stop
	((rc == 0)) || die "$name: h2load exited $rc (124: timeout): $(grep -v '^progress' "$tmp/h2load-$name.txt" | tail -n 4 | tr '\n' ' ')"
	ok=$(h2load_ok "$tmp/h2load-$name.txt")
	((ok == REQUESTS)) || die "$name: only $ok of $REQUESTS requests got a 2xx (timeouts are connections left without an answer for 10s): $(grep -E '^(requests|status codes):' "$tmp/h2load-$name.txt" | tr '\n' ' ')"
	took[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	log "$name: $REQUESTS requests in ${took[$name]}s under strace"

	strace_table "$tmp/strace-$name.txt" | awk -v p="$name" -v proc="$name" -v n="$REQUESTS" \
		'{ printf "%s,%s,%s,%d,%d,%d,%.4f,%.4f\n", p, proc, $1, $2, $3, n, $2 / n, $3 / n }' >>"$csv"
	cols+=("$name/$name")
	if ((TRACE_BACKEND)); then
		strace_table "$tmp/strace-$name-backend.txt" | awk -v p="$name" -v n="$REQUESTS" \
			'{ printf "%s,backend,%s,%d,%d,%d,%.4f,%.4f\n", p, $1, $2, $3, n, $2 / n, $3 / n }' >>"$csv"
		cols+=("$name/backend")
	fi
	sleep 0.5
done

# --- report: one row per syscall, one column per traced process; sorted by the proxies' calls.
report=$(
	printf 'syscalls per request %s — nproc %s, %s, %s requests via h2load --h1 -c%s per proxy, strace -c -f; calls per request (failed calls per request)\n' \
		"$(date '+%Y-%m-%d %H:%M %Z')" "$(nproc)" "$(uname -r)" "$REQUESTS" "$CLIENTS"
	hdr=(18 syscall)
	for c in "${cols[@]}"; do
		p=${c%/*} proc=${c#*/}
		if [[ $proc == backend ]]; then hdr+=(22 "backend (behind $p)"); else hdr+=(22 "$p"); fi
	done
	row "${hdr[@]}"
	awk -F, 'NR > 1 { key = $1 "/" $2; c[$3, key] = $7; e[$3, key] = $8; names[$3] = 1
			if ($2 != "backend") order[$3] += $7; tc[key] += $7; te[key] += $8 }
		END {
			for (s in names) printf "%s %.6f\n", s, order[s]
		}' "$csv" | sort -k2,2gr -k1,1 | while read -r sc _; do
		line=(18 "$sc")
		for c in "${cols[@]}"; do
			p=${c%/*} proc=${c#*/}
			cell=$(awk -F, -v s="$sc" -v p="$p" -v q="$proc" 'NR > 1 && $1 == p && $2 == q && $3 == s {
					printf "%.3f", $7; if ($8 > 0) printf " (%.3f)", $8; found = 1 }
				END { if (!found) printf "-" }' "$csv")
			line+=(22 "$cell")
		done
		row "${line[@]}"
	done
	line=(18 total)
	for c in "${cols[@]}"; do
		p=${c%/*} proc=${c#*/}
		line+=(22 "$(awk -F, -v p="$p" -v q="$proc" 'NR > 1 && $1 == p && $2 == q { n += $7; e += $8 }
			END { printf "%.3f", n; if (e > 0) printf " (%.3f)", e }' "$csv")")
	done
	row "${line[@]}"
	for name in "${proxies[@]}"; do
		awk -v p="$name" -v t="${took[$name]}" -v n="$REQUESTS" -v idle="${idle_rate[$name]}" 'BEGIN {
			printf "%s: %d requests in %ss under strace (%.0f req/s); with no load it makes %s syscalls/s, i.e. up to %.3f of its calls per request are background\n",
				p, n, t, n / t, idle, idle * t / n }'
	done
	printf 'includes accepting and closing h2load'"'"'s %s connections (%.4f connections per request). CSV: %s\n' \
		"$CLIENTS" "$(awk -v c="$CLIENTS" -v n="$REQUESTS" 'BEGIN { print c / n }')" "$csv"
)
echo
echo "$report"
echo "$report" >"$RESULTS_DIR/syscalls-$stamp.txt"
