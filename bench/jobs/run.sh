#!/bin/bash
# bench/jobs/run.sh - ward's jobs next to graphile-worker on PostgreSQL 15 and
# BullMQ on Redis 7, and the floor: this machine's raw SQLite speed (issue 16,
# "Speed"). Prints one markdown table on stdout (progress on stderr).
#   bench/jobs/run.sh           the full run (100,000 jobs; 1,000,000 kept for the idle host)
#   bench/jobs/run.sh --quick   a smoke run (20,000 jobs; 100,000 kept)
#   BENCH_ONLY="floor gw bull ward" picks the systems to run (default: all)
#
# Every system runs an empty job in 2 worker processes. What is measured:
#   throughput  N jobs enqueued with many in flight -> the last one done
#   latency     on idle workers, one job at a time: enqueue sent -> the job's
#               code called (median and p99 of 200)
#   recovery    a worker dies (SIGKILL / SIGSEGV) holding a job -> the job
#               starts again in another process, with the fastest retry setting
#   at rest     context switches per second of every process of the system
#               (server, workers, their threads) over 10 s of idleness
# Needs: cmake and a C compiler (ward, bench/jobs/*.c), node and npm (the
# peers are npm packages, installed into bench/jobs/node_modules), PostgreSQL
# 15's server binaries (Debian: postgresql-15), redis-server (installed with
# apt-get when missing; needs root). PostgreSQL and Redis run as throw-away
# servers on free ports in a temporary directory, stopped at the end.
# The whole script is one block: bash reads it all before running any of it,
# so editing the file during a run cannot derail that run.
{
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
J=$ROOT/bench/jobs
B=$ROOT/build/bench/jobs
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

N=100000 KEEP=1000000 LAT=200 REC_WARD=5 REC_BULL=5 GW_REC_TIMEOUT=20000 IDLE_S=10
if [ "${1:-}" = --quick ]; then
	N=20000 KEEP=100000 LAT=50 REC_WARD=3 REC_BULL=3 GW_REC_TIMEOUT=10000 IDLE_S=5
elif [ -n "${1:-}" ]; then
	echo "usage: bench/jobs/run.sh [--quick]" >&2
	exit 2
fi
ONLY=${BENCH_ONLY:-floor gw bull ward}
WINDOW=1000 # ward: enqueues in flight; the peers add jobs in batches of 1,000

SECONDS=0
log() { echo "jobs bench: [${SECONDS}s] $*" >&2; }
runs() { [[ " $ONLY " == *" $1 "* ]]; }
kv() { sed -n "s/.*\\<$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; } # kv LINE KEY

# ---------------------------------------------------------------- set-up
log "building ward and bench/jobs"
if [ ! -f build/CMakeCache.txt ]; then
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
fi
cmake --build build -j2 --target ward wardjobs sqlitefloor bench_emptyjob >/dev/null || exit 1
# the producer through libward-client, where this tree has the library
rm -f "$B/wardclient"
cmake --build build --target help 2>/dev/null | grep -qw wardclient && cmake --build build -j2 --target wardclient >/dev/null

if runs bull && ! command -v redis-server >/dev/null; then
	[ "$(id -u)" -eq 0 ] || { echo "jobs bench: run me as root, or install redis-server" >&2; exit 1; }
	log "installing redis-server"
	apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >&2 || exit 1
	# Debian's package starts a system-wide server: not ours, leave it alone
fi
if runs gw && [ ! -x "$PGBIN/postgres" ]; then
	echo "jobs bench: no PostgreSQL server in $PGBIN (Debian: apt-get install postgresql-15; or set PGBIN)" >&2
	exit 1
fi
if (runs gw || runs bull) && [ ! -d "$J/node_modules/graphile-worker" -o "$J/package.json" -nt "$J/node_modules" ]; then
	log "installing the peers' npm packages into bench/jobs/node_modules"
	(cd "$J" && npm install --no-audit --no-fund --loglevel=error >&2) || exit 1
	touch "$J/node_modules"
fi

TOP=$(mktemp -d /tmp/ward-jobs-bench-XXXXXX)
chmod 755 "$TOP"
export BENCH_DIR=$TOP
PG_DATA="" REDIS_PID="" WARD_PID=""
cleanup() {
	[ -n "$WARD_PID" ] && stop_ward
	[ -n "$REDIS_PID" ] && stop_redis
	[ -n "$PG_DATA" ] && stop_pg
	rm -rf "$TOP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_for() { # SECONDS COMMAND...: until the command succeeds
	local until=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $until ] || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- the cells
declare -A CELL NUM
SYSTEMS="ward gw bull floor"
ROWS=""
cell() { # ROW SYSTEM TEXT [NUMBER]
	[[ " $ROWS " == *" $1 "* ]] || ROWS="$ROWS $1"
	CELL[$1,$2]=$3
	NUM[$1,$2]=${4:-}
}

# ---------------------------------------------------------------- the floor
floor() {
	local d=$TOP/floor out
	mkdir -p "$d"
	log "floor: SQLite, $N jobs, no fsync"
	rm -f "$d"/floor.db*
	out=$("$B/sqlitefloor" "$d" "$N" 1000 off) || return
	cell tput_fast floor "$(kv "$out" jobs_per_s) jobs/s (synchronous=OFF, 1,000 a transaction)" "$(kv "$out" jobs_per_s)"
	log "floor: SQLite, $N jobs, fsync per 1,000"
	rm -f "$d"/floor.db*
	out=$("$B/sqlitefloor" "$d" "$N" 1000 fsync) || return
	cell tput floor "$(kv "$out" jobs_per_s) jobs/s (synchronous=FULL, 1,000 a transaction)" "$(kv "$out" jobs_per_s)"
	log "floor: SQLite, 2,000 jobs, fsync per job"
	rm -f "$d"/floor.db*
	out=$("$B/sqlitefloor" "$d" 2000 1 fsync) || return
	cell tput_each floor "$(kv "$out" jobs_per_s) jobs/s (two fsynced commits a job)" "$(kv "$out" jobs_per_s)"
	rm -rf "$d"
}

# ---------------------------------------------------------------- graphile-worker
PG_SOCK=""
start_pg() {
	local port
	port=$(free_port)
	PG_DATA=$TOP/pg/data
	mkdir -p "$TOP/pg"
	chown postgres "$TOP/pg" 2>/dev/null
	# initdb and postgres refuse to run as root
	local as=()
	[ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
	"${as[@]}" "$PGBIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null || return 1
	"${as[@]}" "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$TOP/pg/log" -w \
		-o "-p $port -k $TOP/pg -c listen_addresses='' -c max_connections=200" start >/dev/null || return 1
	PG_CONN="postgres://postgres@/postgres?host=$TOP/pg&port=$port"
	PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
}
stop_pg() {
	local as=()
	[ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
	"${as[@]}" "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 20 stop >/dev/null 2>&1
	PG_DATA=""
}
gw() {
	local out
	log "graphile-worker: starting PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
	start_pg || { log "graphile-worker: PostgreSQL did not start (see above)"; return; }
	log "graphile-worker: throughput, $N jobs"
	out=$(cd "$J" && timeout 600 node gw.mjs "$PG_CONN" throughput "$N") &&
		cell tput gw "$(kv "$out" done_per_s) jobs/s (add $(kv "$out" enqueue_per_s)/s)" "$(kv "$out" done_per_s)"
	log "graphile-worker: latency, $LAT jobs"
	out=$(cd "$J" && timeout 300 node gw.mjs "$PG_CONN" latency "$LAT" 10) &&
		cell lat gw "median $(kv "$out" median_ms) ms, p99 $(kv "$out" p99_ms) ms" "$(kv "$out" median_ms)"
	log "graphile-worker: recovery (gives up after $((GW_REC_TIMEOUT / 1000)) s)"
	out=$(cd "$J" && timeout 120 node gw.mjs "$PG_CONN" recovery 1 "$GW_REC_TIMEOUT")
	if [ -n "$(kv "$out" not_recovered_within_ms)" ]; then
		cell rec gw "not started again within $((GW_REC_TIMEOUT / 1000)) s: a dead worker's lock expires after 4 h (fixed in 0.18), checked every 8-10 min" ""
	elif [ -n "$out" ]; then
		cell rec gw "median $(kv "$out" median_ms) ms" "$(kv "$out" median_ms)"
	fi
	log "graphile-worker: at rest, ${IDLE_S} s"
	out=$(cd "$J" && SERVER_PID=$PG_PID timeout 120 node gw.mjs "$PG_CONN" idle "$IDLE_S") &&
		cell idle gw "$(kv "$out" wakeups_per_s)/s ($(kv "$out" processes) processes: PostgreSQL and 2 workers; done jobs are deleted)" "$(kv "$out" wakeups_per_s)"
	stop_pg
}

# ---------------------------------------------------------------- BullMQ
start_redis() { # extra redis-server arguments
	REDIS_PORT=$(free_port)
	rm -rf "$TOP/redis"
	mkdir -p "$TOP/redis"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TOP/redis" --save '' \
		--daemonize yes --pidfile "$TOP/redis/pid" --logfile "$TOP/redis/log" "$@" || return 1
	wait_for 10 test -s "$TOP/redis/pid" || return 1
	REDIS_PID=$(cat "$TOP/redis/pid")
	wait_for 10 redis-cli -p "$REDIS_PORT" ping >/dev/null
}
stop_redis() {
	kill "$REDIS_PID" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $REDIS_PID"
	REDIS_PID=""
}
bull() {
	local out
	log "BullMQ: Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), appendonly yes, appendfsync always"
	start_redis --appendonly yes --appendfsync always || { log "BullMQ: Redis did not start"; return; }
	log "BullMQ: throughput, $N jobs, durable"
	out=$(cd "$J" && timeout 600 node bull.mjs "$REDIS_PORT" throughput "$N") &&
		cell tput bull "$(kv "$out" done_per_s) jobs/s (add $(kv "$out" enqueue_per_s)/s; AOF, fsync always)" "$(kv "$out" done_per_s)"
	stop_redis
	log "BullMQ: Redis without persistence"
	start_redis --appendonly no || { log "BullMQ: Redis did not start"; return; }
	log "BullMQ: throughput, $N jobs, not durable"
	out=$(cd "$J" && timeout 600 node bull.mjs "$REDIS_PORT" throughput "$N") &&
		cell tput_fast bull "$(kv "$out" done_per_s) jobs/s (add $(kv "$out" enqueue_per_s)/s; no persistence)" "$(kv "$out" done_per_s)"
	log "BullMQ: latency, $LAT jobs"
	out=$(cd "$J" && timeout 300 node bull.mjs "$REDIS_PORT" latency "$LAT" 10) &&
		cell lat bull "median $(kv "$out" median_ms) ms, p99 $(kv "$out" p99_ms) ms" "$(kv "$out" median_ms)"
	log "BullMQ: recovery, $REC_BULL crashes"
	out=$(cd "$J" && timeout 300 node bull.mjs "$REDIS_PORT" recovery "$REC_BULL" 70000) &&
		cell rec bull "median $(kv "$out" median_ms) ms, max $(kv "$out" max_ms) ms (lockDuration = stalledInterval = 1 s; default 30 s each)" "$(kv "$out" median_ms)"
	log "BullMQ: at rest, ${IDLE_S} s"
	out=$(cd "$J" && SERVER_PID=$REDIS_PID timeout 120 node bull.mjs "$REDIS_PORT" idle "$IDLE_S") &&
		cell idle bull "$(kv "$out" wakeups_per_s)/s ($(kv "$out" processes) processes: Redis and 2 workers; queue empty)" "$(kv "$out" wakeups_per_s)"
	stop_redis
}

# ---------------------------------------------------------------- ward
WARD_NOTE=""
setup_ward() {
	local d=$TOP/ward
	mkdir -p "$d/conf"
	"$B/wardjobs" mkstats "$d/stats" || return 1
	cat >"$d/conf/ward.ini" <<EOF
[ward]
plugin_dir = $B
state_dir = ../state
autoload = no
log_max_size = 0

[jobs]
plugin = emptyjob
instances = 2
stats = $d/stats
job_retry_delay = 0
restart_delay = 0
max_restarts = unlimited
limit.core = 0
EOF
}
start_ward() {
	local d=$TOP/ward
	(cd "$d" && exec "$ROOT/build/ward" run -c "$d/conf" >"$d/ward.out" 2>&1) &
	WARD_PID=$!
	WARD_SOCK=$d/state/ward.sock
	wait_for 20 test -S "$WARD_SOCK" || return 1
	wait_for 20 sh -c "'$ROOT/build/ward' status -c '$d/conf' >/dev/null"
}
stop_ward() {
	kill -TERM "$WARD_PID" 2>/dev/null
	wait_for 20 sh -c "! kill -0 $WARD_PID" || kill -KILL "$WARD_PID" 2>/dev/null
	wait "$WARD_PID" 2>/dev/null
	WARD_PID=""
}
# `ward status` with KEEP done jobs kept: the fastest of 3, in ms
status_ms() {
	local best="" i t0 t1 ms
	for i in 1 2 3; do
		t0=$(date +%s%N)
		"$ROOT/build/ward" status -c "$TOP/ward/conf" >/dev/null 2>&1
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		[ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
	done
	echo "$best"
}
ward() {
	local out why d=$TOP/ward
	setup_ward || return
	if ! why=$("$ROOT/build/ward" check -c "$d/conf" 2>&1); then
		WARD_NOTE="ward: not measured: \`ward check\` refuses the job worker (no job host in this build?): $(head -3 <<<"$why" | tr '\n' ' ')"
		log "$WARD_NOTE"
		return
	fi
	log "ward: starting the host"
	if ! start_ward; then
		WARD_NOTE="ward: not measured: the host did not start: $(tail -3 "$d/ward.out" | tr '\n' ' ')"
		log "$WARD_NOTE"
		return
	fi
	log "ward: throughput, $N jobs, $WINDOW in flight"
	if out=$("$B/wardjobs" throughput "$WARD_SOCK" jobs "$N" "$WINDOW" "$d/stats"); then
		cell tput ward "$(kv "$out" done_per_s) jobs/s (enqueue $(kv "$out" enqueue_per_s)/s, answered when fsynced)" "$(kv "$out" done_per_s)"
	else
		WARD_NOTE="ward: the throughput run failed (see stderr)"
	fi
	log "ward: latency, $LAT jobs"
	out=$("$B/wardjobs" latency "$WARD_SOCK" jobs "$LAT" 10) &&
		cell lat ward "median $(kv "$out" median_ms) ms, p99 $(kv "$out" p99_ms) ms" "$(kv "$out" median_ms)"
	if [ -x "$B/wardclient" ]; then
		log "ward: through libward-client, 2,000 enqueues one at a time, $LAT latencies"
		out=$("$B/wardclient" enqueue "$WARD_SOCK" jobs 2000) &&
			cell tput_lib ward "$(kv "$out" enqueue_per_s) enqueues/s" "$(kv "$out" enqueue_per_s)"
		out=$("$B/wardclient" latency "$WARD_SOCK" jobs "$LAT" 10) &&
			cell lat_lib ward "median $(kv "$out" median_ms) ms, p99 $(kv "$out" p99_ms) ms" "$(kv "$out" median_ms)"
	else
		WARD_NOTE="${WARD_NOTE:+$WARD_NOTE; }no libward-client in this tree: its rows are missing"
	fi
	log "ward: recovery, $REC_WARD crashes"
	out=$("$B/wardjobs" recovery "$WARD_SOCK" jobs "$d/stats" "$REC_WARD") &&
		cell rec ward "median $(kv "$out" median_ms) ms, max $(kv "$out" max_ms) ms (job_retry_delay = 0)" "$(kv "$out" median_ms)"
	log "ward: filling the store with $KEEP done jobs"
	if out=$("$B/wardjobs" throughput "$WARD_SOCK" jobs "$KEEP" "$WINDOW" "$d/stats"); then
		sleep 15 # at rest: after the host has settled (syncs, checkpoints, the first prune)
		log "ward: at rest, ${IDLE_S} s"
		out=$(node "$J/common.mjs" wakeups "$IDLE_S" "$WARD_PID") &&
			cell idle ward "$(kv "$out" wakeups_per_s)/s ($(kv "$out" processes) processes: the host and its children, 2 workers among them; $KEEP done jobs kept)" "$(kv "$out" wakeups_per_s)"
		local st
		st=$(status_ms)
		cell status ward "$st ms (fastest of 3, $KEEP done jobs kept)" "$st"
	fi
	stop_ward
}

# ---------------------------------------------------------------- run and print
for s in floor gw bull ward; do
	runs $s && $s
done

declare -A TITLE=(
	[tput]="throughput enqueue → done, $N jobs, durable enqueue"
	[tput_fast]="throughput enqueue → done, $N jobs, nothing fsynced"
	[tput_each]="one durable commit per step (no group commit)"
	[tput_lib]="one producer through libward-client, one enqueue at a time (each answered when fsynced)"
	[lat]="latency enqueue → job code called, idle workers ($LAT jobs, one at a time)"
	[lat_lib]="the same latency through libward-client (ward_client_enqueue, then ward_client_wait)"
	[rec]="recovery: worker killed holding a job → the job starts again in another process"
	[idle]="at rest: wakeups (context switches) per second of the whole system, ${IDLE_S} s"
	[status]="\`ward status\` at rest"
)
# higher is better for throughput, lower for the rest
better_high() { [[ $1 == tput* ]]; }
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r < 0.01 ? "%.4f" : r < 0.1 ? "%.3f" : "%.2f"), r }'; }
ratio() { # ROW: ward's figure against the best peer's (not the floor)
	local row=$1 s best="" bestsv=""
	[ -n "${NUM[$row,ward]:-}" ] || { echo "—"; return; }
	for s in gw bull; do
		local v=${NUM[$row,$s]:-}
		[ -n "$v" ] || continue
		if [ -z "$best" ] || { better_high "$row" && awk -v a="$v" -v b="$best" 'BEGIN{exit !(a>b)}'; } ||
			{ ! better_high "$row" && awk -v a="$v" -v b="$best" 'BEGIN{exit !(a<b)}'; }; then
			best=$v bestsv=$s
		fi
	done
	local r="" f=${NUM[$row,floor]:-}
	if [ -n "$best" ] && awk -v b="$best" 'BEGIN{exit !(b>0)}'; then
		r="$(fmt_ratio "${NUM[$row,ward]}" "$best") × $bestsv"
	fi
	if [ -n "$f" ] && awk -v b="$f" 'BEGIN{exit !(b>0)}'; then
		r="${r:+$r; }$(fmt_ratio "${NUM[$row,ward]}" "$f") × floor"
	fi
	echo "${r:-—}"
}
echo
echo "| measurement | ward | graphile-worker 0.18.0 (PostgreSQL 15) | BullMQ 6.7.6 (Redis 7) | SQLite floor | ward ÷ best peer; ÷ floor |"
echo "|---|---|---|---|---|---|"
for row in tput tput_fast tput_each tput_lib lat lat_lib rec idle status; do
	[[ " $ROWS " == *" $row "* ]] || continue
	line="| ${TITLE[$row]}"
	for s in $SYSTEMS; do line="$line | ${CELL[$row,$s]:-—}"; done
	echo "$line | $(ratio "$row") |"
done
echo
echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(uname -r); node $(node --version)."
[ -n "$WARD_NOTE" ] && echo "$WARD_NOTE"
exit 0
}
