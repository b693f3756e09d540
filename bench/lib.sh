# shellcheck shell=bash
# Helpers shared by the bench/ scripts. Source it after setting BENCH_NAME, KEEP_TMP and tmp
# (the run's temp dir); it provides logging, cleanup of every started process by PID, free
# ports, readiness waits, an nginx starter, /proc CPU accounting and wrk latency parsing.

pids=()

die() {
	echo "${BENCH_NAME:-bench}: $*" >&2
	exit 1
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck disable=SC2317,SC2154 # invoked by the EXIT trap; tmp is set by the sourcing script
cleanup() {
	local rc=$? pid i alive
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if ((rc != 0 || ${KEEP_TMP:-0})); then log "logs and configs kept in $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}

# install_cleanup stops everything the script started on exit, Ctrl-C or TERM.
install_cleanup() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

free_port() {
	local p
	for _ in $(seq 500); do
		# Below the kernel's ephemeral range (32768+), so a client socket cannot take it meanwhile.
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

wait_http() {
	local url=$1 i
	for ((i = 0; i < 150; i++)); do
		curl -fsS -o /dev/null -m 1 "$url" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$url did not answer within 15s"
}

# nginx_start DIR BODY starts an nginx (1 worker, no access log, unlimited keep-alive) whose
# http block holds BODY; its PID joins pids.
nginx_start() {
	local dir=$1 body=$2
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$body
}
NGX
	nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || die "nginx -t failed for $dir"
	nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stderr.log" 2>&1 &
	pids+=("$!")
}

# cpu_ticks prints utime+stime (fields 14 and 15 of /proc/PID/stat) of one process, all threads.
cpu_ticks() {
	local stat rest
	local -a f
	stat=$(<"/proc/$1/stat") || die "pid $1 vanished while measuring"
	rest=${stat##*) }
	read -r -a f <<<"$rest"
	echo $((f[11] + f[12]))
}

# to_ms converts a wrk latency ("812.00us", "1.20ms", "1.01s") to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
