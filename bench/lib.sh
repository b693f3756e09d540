# shellcheck shell=bash
# Helpers shared by the bench/ scripts. Source it after setting BENCH_NAME, KEEP_TMP and tmp
# (the run's temp dir); it provides logging, cleanup of every started process by PID, free
# ports, readiness waits, an nginx starter, /proc CPU and memory accounting, wrk parsing, a
# bounded runner for load generators, the gatehouse build and the configs bench/run.sh uses
# (backend, nginx proxy, plain Gatehouse route), so every script measures the same setup.

pids=()       # long-lived processes this script started (nginx masters, gatehouse, redis, ...)
extra_pids=() # nginx workers: killed only if their master did not take them down
bg_pid=""     # the bounded load generator running right now (run_bounded), if any
transient=()  # short-lived helpers (tracers) running right now; the script empties it once they are reaped

lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	echo "${BENCH_NAME:-bench}: $*" >&2
	exit 1
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck disable=SC2317,SC2154 # invoked by the EXIT trap; tmp is set by the sourcing script
cleanup() {
	local rc=$? pid i alive
	trap - EXIT INT TERM
	for pid in ${bg_pid:+"$bg_pid"} "${transient[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "${pids[@]}" "${extra_pids[@]}" ${bg_pid:+"$bg_pid"} "${transient[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	# pids, bg_pid and transient are children not yet reaped, so their PIDs cannot have been
	# reused; a worker is killed only while it still is an nginx process.
	for pid in "${pids[@]}" ${bg_pid:+"$bg_pid"} "${transient[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	for pid in "${extra_pids[@]}"; do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]] && { kill -KILL "$pid" 2>/dev/null || true; }
	done
	wait 2>/dev/null || true
	if ((rc != 0 || ${KEEP_TMP:-0})); then log "logs and configs kept in $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}

# make_tmp NAME creates the script's temp dir in $tmp (gatehouse-NAME-bench.XXXXXX; removed on
# exit unless KEEP_TMP=1 or the script failed) and installs the cleanup trap.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-$1-bench.XXXXXX")
	install_cleanup
	log "temp dir: $tmp"
}

# install_cleanup stops everything the script started on exit, Ctrl-C or TERM.
install_cleanup() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# free_port prints a loopback port nothing listens on. Ports it handed out are remembered in
# $tmp/.ports (when tmp is set), so two calls before anything listens cannot get the same one.
free_port() {
	local p reg=""
	[[ -n ${tmp:-} && -d ${tmp:-} ]] && reg=$tmp/.ports
	for _ in $(seq 500); do
		# Below the kernel's ephemeral range (32768+), so a client socket cannot take it meanwhile.
		p=$((20000 + RANDOM % 12000))
		[[ -n $reg ]] && grep -qx "$p" "$reg" 2>/dev/null && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			[[ -z $reg ]] || echo "$p" >>"$reg"
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

# nginx_start DIR BODY [WORKERS] starts an nginx (WORKERS workers, default 1; no access log,
# unlimited keep-alive) whose http block holds BODY; its PID joins pids and is left in nginx_pid.
nginx_start() {
	local dir=$1 body=$2 workers=${3:-1}
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<NGX
worker_processes $workers;
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
	nginx_pid=$!
	pids+=("$nginx_pid")
}

# cpu_ticks prints utime+stime (fields 14 and 15 of /proc/PID/stat) of one process, all threads;
# cpu_ticks PID user prints utime alone.
cpu_ticks() {
	local stat rest
	local -a f
	stat=$(<"/proc/$1/stat") || die "pid $1 vanished while measuring"
	rest=${stat##*) }
	read -r -a f <<<"$rest"
	if [[ ${2:-} == user ]]; then
		echo $((f[11]))
	else
		echo $((f[11] + f[12]))
	fi
}

# to_ms converts a wrk latency ("812.00us", "1.20ms", "1.01s") to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

# seconds converts a duration ("10s", "2m", "1h", "30") to whole seconds.
seconds() {
	local d=$1
	case "$d" in
	*s) echo "${d%s}" ;;
	*m) echo $((${d%m} * 60)) ;;
	*h) echo $((${d%h} * 3600)) ;;
	*) echo "$d" ;;
	esac
}

# need TOOL... dies naming the tools that are missing.
need() {
	local t missing=()
	for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
	((${#missing[@]} == 0)) ||
		die "missing tools: ${missing[*]} (apt-get install -y nginx wrk nghttp2-client strace curl procps; Go: https://go.dev/dl/)"
}

# children prints the PIDs whose parent is $1 (an nginx master's workers).
children() {
	ps -o pid= --ppid "$1" | tr -d ' '
}

# nginx_workers MASTER waits for the master's workers, records them for cleanup and leaves them
# in got_workers (a global, not output: a $(...) subshell would lose the bookkeeping).
nginx_workers() {
	local master=$1 i
	got_workers=()
	for ((i = 0; i < 50; i++)); do
		mapfile -t got_workers < <(children "$master")
		if ((${#got_workers[@]})); then
			extra_pids+=("${got_workers[@]}")
			return 0
		fi
		sleep 0.1
	done
	die "nginx master $master has no worker processes"
}

# run_bounded LIMIT_S OUT CMD... runs CMD under timeout in the background (so Ctrl-C stays
# responsive and cleanup can stop it) with its output in OUT, and returns CMD's status.
run_bounded() {
	local limit=$1 out=$2 rc=0
	shift 2
	timeout -k 5 "$limit" "$@" >"$out" 2>&1 &
	bg_pid=$!
	wait "$bg_pid" || rc=$?
	bg_pid=""
	return "$rc"
}

# cpu_ticks_sum PID... prints utime+stime summed over the given processes (clock ticks);
# user_ticks_sum PID... prints utime alone.
cpu_ticks_sum() {
	local total=0 pid
	for pid in "$@"; do total=$((total + $(cpu_ticks "$pid"))); done
	echo "$total"
}

user_ticks_sum() {
	local total=0 pid
	for pid in "$@"; do total=$((total + $(cpu_ticks "$pid" user))); done
	echo "$total"
}

# sys_cpu prints the aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal.
sys_cpu() {
	local rest
	read -r _ rest </proc/stat
	echo "$rest"
}

# rss_kib PID... prints "VmRSS Pss Threads" summed over the given processes (KiB, KiB, count).
# RSS counts shared pages (libc, nginx's shared memory) once per process; PSS splits them.
rss_kib() {
	local pid rss=0 pss=0 thr=0 k v
	for pid in "$@"; do
		while read -r k v _; do
			case "$k" in
			VmRSS:) rss=$((rss + v)) ;;
			Threads:) thr=$((thr + v)) ;;
			esac
		done <"/proc/$pid/status" || die "pid $pid vanished while measuring"
		while read -r k v _; do
			[[ $k == Pss: ]] && pss=$((pss + v))
		done < <(cat "/proc/$pid/smaps_rollup" 2>/dev/null)
	done
	echo "$rss $pss $thr"
}

# wrk_parse FILE prints "requests rps p50_ms p99_ms socket_errors non2xx" from a wrk --latency report.
wrk_parse() {
	awk '
		function ms(v,   n, u) {
			n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			if (u == "us") return n / 1000
			if (u == "ms") return n
			if (u == "s") return n * 1000
			if (u == "m") return n * 60000
			return -1
		}
		/ requests in / { req = $1 }
		/^Requests\/sec:/ { rps = $2 }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { non2xx = $NF }
		END { printf "%d %.2f %.3f %.3f %d %d\n", req, rps, p50, p99, serr, non2xx }
	' "$1"
}

# mmm prints "median min max" of the numbers on stdin, one a line ("nan nan nan" if none).
mmm() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan nan nan"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print m, v[1], v[NR]
	}'
}

# gatehouse_build DEST puts a gatehouse binary at DEST: a copy of GATEHOUSE_BIN if set, else
# `go build ./cmd/gatehouse`, retried once (a build cache shared with concurrent builds has
# been seen to fail transiently).
gatehouse_build() {
	local dest=$1 try
	if [[ -n ${GATEHOUSE_BIN:-} ]]; then
		[[ -x $GATEHOUSE_BIN ]] || die "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable file"
		cp "$GATEHOUSE_BIN" "$dest"
		log "gatehouse: using prebuilt $GATEHOUSE_BIN"
		return 0
	fi
	log "building gatehouse (go build)"
	for try in 1 2; do
		if (cd "$lib_dir/.." && go build -trimpath -o "$dest" ./cmd/gatehouse) >"$dest.build.log" 2>&1; then
			return 0
		fi
		((try == 1)) && log "build failed; retrying once: $(tr '\n' ' ' <"$dest.build.log")" && sleep 2
	done
	die "building gatehouse failed: $(tr '\n' ' ' <"$dest.build.log") (GATEHOUSE_BIN=/path/to/gatehouse uses a prebuilt one)"
}

# gatehouse_start BIN CONFIG LOGPREFIX validates CONFIG, starts `BIN run -c CONFIG` and leaves its
# PID in gh_pid (also in pids).
gatehouse_start() {
	local bin=$1 cfg=$2 out=$3
	"$bin" validate -c "$cfg" >"$out.validate" 2>&1 || die "gatehouse validate $cfg failed: $(cat "$out.validate")"
	"$bin" run -c "$cfg" >"$out.stdout" 2>"$out.stderr" &
	gh_pid=$!
	pids+=("$gh_pid")
}

# backend_start DIR starts bench/run.sh's backend: nginx, one worker, answering every request
# with 200 "ok\n". Sets backend_port, backend_pid (master) and backend_workers.
backend_start() {
	local dir=$1
	backend_port=$(free_port)
	nginx_start "$dir" "    server {
        listen 127.0.0.1:$backend_port;
        location / {
            return 200 \"ok\\n\";
        }
    }"
	backend_pid=$nginx_pid
	wait_http "http://127.0.0.1:$backend_port/"
	nginx_workers "$backend_pid"
	backend_workers=("${got_workers[@]}")
}

# plain_backend_start starts bench/run.sh's backend under $tmp/backend (see backend_start) and
# sets backend_url.
plain_backend_start() {
	backend_start "$tmp/backend"
	backend_url="http://127.0.0.1:$backend_port"
	log "backend nginx on $backend_url (master $backend_pid, worker(s) ${backend_workers[*]})"
}

# nginx_proxy_body PORT UPSTREAM_PORT [EXTRA_HTTP] [EXTRA_LOCATION] prints the http block of
# bench/run.sh's nginx proxy: an upstream with keepalive 64, HTTP/1.1 to it, no access log.
nginx_proxy_body() {
	local port=$1 up=$2 extra_http=${3:-} extra_loc=${4:-}
	cat <<NGX
    upstream backend {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
    }
$extra_http
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
$extra_loc
        }
    }
NGX
}

# nginx_full_body PORT UPSTREAM_PORT ACCESS_LOG prints the http block of bench/run.sh's
# nginx_full: nginx_proxy_body's proxy doing the work Gatehouse's plain route does on every request
# — a request ID sent upstream and back, X-Forwarded-For/-Proto/-Host and Forwarded upstream, the
# three default security headers on the response, and an access log line as JSON with the same
# fields as Gatehouse's, buffered as Gatehouse's is by default (256 KiB, flushed every second).
nginx_full_body() {
	local port=$1 up=$2 access=$3
	# shellcheck disable=SC2016 # nginx variables, not shell ones
	nginx_proxy_body "$port" "$up" '    log_format gh escape=json '"'"'{"time":"$time_iso8601","msg":"request","request_id":"$request_id","client_ip":"$remote_addr","method":"$request_method","host":"$host","path":"$uri","route":"all","service":"backend","target":"$upstream_addr","status":$status,"bytes":$body_bytes_sent,"duration_ms":$request_time,"upstream_ms":"$upstream_response_time"}'"'"';' \
		"            access_log $access gh buffer=256k flush=1s;
            proxy_set_header X-Request-Id \$request_id;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header Forwarded \"for=\$remote_addr;host=\\\"\$http_host\\\";proto=\$scheme\";
            add_header X-Request-Id \$request_id always;
            add_header X-Frame-Options DENY always;
            add_header Referrer-Policy no-referrer always;
            add_header X-Content-Type-Options nosniff always;"
}

# gatehouse_plain_yaml PORT BACKEND_URL ACCESS_LOG [EXTRA] prints bench/run.sh's ROUTE=plain
# config: one /** route to the backend, access log on (buffered JSON to ACCESS_LOG; "off"
# disables it). EXTRA is appended as top-level YAML (e.g. an admin listener).
gatehouse_plain_yaml() {
	local port=$1 url=$2 access=$3 extra=${4:-} al
	al="{ output: $access }"
	[[ $access == off ]] && al="{ enabled: false }"
	cat <<EOF
version: 1
listeners:
  - { name: public, address: "127.0.0.1:$port" }
server:
  access_log: $al
services:
  - name: backend
    targets: [{ url: "$url" }]
    pool: { max_idle_per_target: 256 }
routes:
  - name: all
    match: { path: "/**" }
    service: backend
$extra
EOF
}

# pad TEXT WIDTH prints TEXT left-aligned in WIDTH characters (printf's %-Ns counts bytes, so
# "µs", "–" and "−" would skew the columns).
pad() {
	local LC_ALL=C.UTF-8
	local t=$1 w=$2
	printf '%s%*s' "$t" $((w > ${#t} ? w - ${#t} : 0)) ''
}

# row W1 T1 W2 T2 ... prints one table row: each TEXT padded to its WIDTH, one space between
# (the last one unpadded).
row() {
	local out=""
	while (($# > 2)); do
		out+="$(pad "$2" "$1") "
		shift 2
	done
	printf '%s%s\n' "$out" "${2:-}"
}

# start_plain_proxies PIDS_VAR NAME... starts each named proxy (nginx, gatehouse) in front of the
# backend of backend_start, with bench/run.sh's ROUTE=plain configs, checks that it forwards the
# backend's body, and records its port in port[NAME] and the processes to measure (nginx's
# workers, Gatehouse's pid) in the associative array named PIDS_VAR. Needs $tmp, $backend_port,
# $backend_url and a gatehouse binary at $tmp/gatehouse.
start_plain_proxies() {
	local -n measured=$1
	shift
	local name body
	for name in "$@"; do
		port[$name]=$(free_port)
		case "$name" in
		nginx)
			nginx_start "$tmp/nginx" "$(nginx_proxy_body "${port[nginx]}" "$backend_port")"
			wait_http "http://127.0.0.1:${port[nginx]}/verify"
			nginx_workers "$nginx_pid"
			measured[nginx]="${got_workers[*]}"
			;;
		gatehouse)
			mkdir -p "$tmp/gatehouse.d"
			gatehouse_plain_yaml "${port[gatehouse]}" "$backend_url" "$tmp/gatehouse.d/access.log" >"$tmp/gatehouse.d/gatehouse.yaml"
			gatehouse_start "$tmp/gatehouse" "$tmp/gatehouse.d/gatehouse.yaml" "$tmp/gatehouse.d/gatehouse"
			wait_http "http://127.0.0.1:${port[gatehouse]}/verify"
			measured[gatehouse]=$gh_pid
			;;
		*) die "start_plain_proxies: unknown proxy $name" ;;
		esac
		body=$(curl -fsS -m 2 "http://127.0.0.1:${port[$name]}/bench/verify?x=1")
		[[ $body == ok ]] || die "$name: unexpected body $(printf '%q' "$body")"
		log "$name on :${port[$name]} (pid(s) ${measured[$name]}): verified"
	done
}

# parse_args ARGS... handles the arguments every bench script takes: --quick sets quick=1, and
# -h/--help prints the script's header comment and exits.
parse_args() {
	quick=0
	local arg
	for arg in "$@"; do
		case "$arg" in
		--quick) quick=1 ;;
		-h | --help)
			awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
			exit 0
			;;
		*)
			echo "$BENCH_NAME: unknown argument: $arg (try --help)" >&2
			exit 2
			;;
		esac
	done
}

# col NAME N prints column N of NAME's rows of the CSV at $csv (the name in column 3).
col() { awk -F, -v p="$1" -v c="$2" 'NR > 1 && $3 == p { print $c }' "$csv"; }

# fmt MEDIAN MIN MAX FORMAT prints "median (min–max)" with printf FORMAT for each number.
fmt() { awk -v m="$1" -v lo="$2" -v hi="$3" -v f="$4" 'BEGIN { printf f " (" f "–" f ")", m, lo, hi }'; }
