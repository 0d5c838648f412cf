#!/bin/bash
# bench/compare.sh - ward side by side with supervisord, runit and s6 (issue 8).
#
# Run by bench/run, which builds ward and the helpers, installs the other
# supervisors, and runs this script under `benchtool reaper` (a child
# subreaper, so orphans are reaped and nothing outlives the run). Prints one
# markdown table on stdout, progress on stderr.
#
# Environment (set by bench/run):
#   BENCH_TOP     temporary directory; $BENCH_TOP/bin holds benchtool and worker
#   BENCH_QUICK   yes: a smoke run (fewer repetitions, smaller sizes)
#   WARD          the ward binary; WARD_PLUGINS: build/bench; WARD_BENCH: ward-bench
#   BENCH_ONLY    optional: the scenarios to run, e.g. "restart logs" (default: all)
#   BENCH_WORKER_LINK  static or dynamic: how bench/run linked bench/worker.c
#
# Every supervisor runs the same kind of worker: ward the `stamp` plugin
# (bench/stamp.c), the others bench/worker.c (scenario `command`: ward runs
# bench/worker.c too, as a command worker, next to a bare fork+exec loop). Each writes "<id> <CLOCK_MONOTONIC
# ns>" to a stamps file when it starts; times are taken from those stamps and
# from benchtool, on the same clock.
set -u

T=$BENCH_TOP
B=$T/bin/benchtool
W=$T/bin/worker
SUPS="ward supervisord runit s6"
STOP_TIMEOUT_S=2

if [ "${BENCH_QUICK:-no}" = yes ]; then
	RESTARTS_WARD=50 RESTARTS_OTHER=5 BOOT_SIZES="100" IDLE_S=3 LOG_LINES=100000
	CYCLES=50000000 SCALE_SIZES="2000" ONDEMAND_REPS=3 BOOT_REPS=1
else
	RESTARTS_WARD=200 RESTARTS_OTHER=50 BOOT_SIZES="100 1000" IDLE_S=20 LOG_LINES=1000000
	CYCLES=500000000 SCALE_SIZES="5000 10000" ONDEMAND_REPS=10 BOOT_REPS=3
fi
N=100 # workers in the idle and stop scenarios

ulimit -c 0 # no core files from the crash scenario
# 10,000 ward workers need a descriptor each in the host: raise the
# hard limit where allowed (a container may forbid it), and the soft one to it
ulimit -Hn 65536 2>/dev/null
ulimit -n "$(ulimit -Hn)"

SECONDS=0
log() { echo "bench: [${SECONDS}s] $*" >&2; }

# ns -> ms with one decimal; ms values -> fixed
ns2ms() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1e6 }'; }
fmt() { awk -v a="$1" 'BEGIN { if (a >= 100) printf "%.0f", a; else if (a >= 10) printf "%.1f", a; else printf "%.2f", a }'; }

# ---------------------------------------------------------------- supervisors
# setup_SV DIR MODE COUNT [LINES]  writes the configuration for COUNT workers
# start_SV DIR                     starts it; prints "PID T0_NS" (benchtool spawn)
# stopcmd_SV DIR PID               prints its normal stop command
# logfiles_SV DIR                  the files worker 0's output ends up in

setup_ward() {
	local d=$1 mode=$2 n=$3 lines=${4:-0} k=0 left=$3 here
	mkdir -p "$d/conf"
	{
		printf '[ward]\nplugin_dir = %s\nstate_dir = ../state\nautoload = no\nlog_max_size = 0\n' "$WARD_PLUGINS"
		printf 'log_output = %s\nlog_format = %s\n\n' "${WARD_LOG_OUTPUT:-file}" "${WARD_LOG_FORMAT:-text}"
		printf '[defaults]\nplugin = stamp\nout = %s/stamps\nthen = %s\nlines = %s\ninterval = 1h\n' "$d" "$mode" "$lines"
		printf 'block_buffered = %s\n' "${WARD_BLOCK_BUFFERED:-no}"
		printf 'restart_delay = 0\nmax_restarts = unlimited\nstop_timeout = %ss\nwatchdog = %s\nlimit.core = 0\n' \
			"$STOP_TIMEOUT_S" "${WARD_WATCHDOG:-0}"
		while [ "$left" -gt 0 ]; do
			here=$((left > 1000 ? 1000 : left))
			printf '\n[w%d]\ninstances = %d\n' "$k" "$here"
			left=$((left - here)) k=$((k + 1))
		done
	} >"$d/conf/ward.ini"
}
# The same host settings, its COUNT workers running bench/worker.c (`command`)
setup_wardcmd() {
	local d=$1 mode=$2 n=$3 k=0 left=$3 here
	mkdir -p "$d/conf"
	{
		printf '[ward]\nplugin_dir = %s\nstate_dir = ../state\nautoload = no\nlog_max_size = 0\n\n' "$WARD_PLUGINS"
		printf '[defaults]\nrestart_delay = 0\nmax_restarts = unlimited\nstop_timeout = %ss\nlimit.core = 0\n' "$STOP_TIMEOUT_S"
		while [ "$left" -gt 0 ]; do
			here=$((left > 1000 ? 1000 : left))
			printf '\n[w%d]\ncommand = %s %s 0 %s/stamps\ninstances = %d\n' "$k" "$W" "$mode" "$d" "$here"
			left=$((left - here)) k=$((k + 1))
		done
	} >"$d/conf/ward.ini"
}
# log_output = stdout: the host's stdout is a pipe that benchtool copies into
# stdout.log, or with WARD_STDOUT=file the file ward.out (its stderr's too)
start_ward() {
	local pipe_to=""
	[ "${WARD_LOG_OUTPUT:-file}" = stdout ] && [ "${WARD_STDOUT:-pipe}" = pipe ] && pipe_to=$1/stdout.log
	(cd "$1" && SPAWN_STDOUT_PIPE=$pipe_to "$B" spawn "$1/ward.out" "$WARD" run -c "$1/conf")
}
stopcmd_ward() { echo kill -TERM "$2"; }
logfiles_ward() {
	if [ "${WARD_LOG_OUTPUT:-file}" != stdout ]; then
		echo "$1/state/logs/w0.log"
	elif [ "${WARD_STDOUT:-pipe}" = pipe ]; then
		echo "$1/stdout.log"
	else
		echo "$1/ward.out"
	fi
}

setup_supervisord() {
	local d=$1 mode=$2 n=$3 lines=${4:-0} logfile=NONE
	[ "$mode" = lines ] && logfile=$d/w0.log
	mkdir -p "$d"
	cat >"$d/supervisord.conf" <<EOF
[unix_http_server]
file = $d/supervisor.sock

[supervisord]
nodaemon = true
logfile = $d/supervisord.log
pidfile = $d/supervisord.pid
childlogdir = $d
loglevel = warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:w]
command = $W $mode %(process_num)d $d/stamps $lines
process_name = w%(process_num)d
numprocs = $n
autostart = true
autorestart = true
startsecs = 0
startretries = 1000000
stopsignal = TERM
stopwaitsecs = $STOP_TIMEOUT_S
redirect_stderr = true
stdout_logfile = $logfile
stdout_logfile_maxbytes = 0
EOF
}
start_supervisord() { (cd "$1" && "$B" spawn "$1/supervisord.out" supervisord -c "$1/supervisord.conf"); }
stopcmd_supervisord() { echo kill -TERM "$2"; }
logfiles_supervisord() { echo "$1/w0.log"; }

# runit and s6: one service directory per worker; ./run is a symlink to the
# worker (no shell in between), which reads its arguments from ./args.
make_services() { # DIR COUNT MODE STAMPS LINES
	local i
	for ((i = 0; i < $2; i++)); do
		mkdir "$1/w$i"
		ln -s "$W" "$1/w$i/run"
		printf '%s %d %s %s\n' "$3" "$i" "$4" "$5" >"$1/w$i/args"
	done
}

setup_runit() {
	local d=$1 mode=$2 n=$3 lines=${4:-0}
	mkdir -p "$d/service"
	make_services "$d/service" "$n" "$mode" "$d/stamps" "$lines"
	if [ "$mode" = lines ]; then
		mkdir -p "$d/service/w0/log" "$d/logs"
		printf '#!/bin/sh\nexec svlogd -b 65536 %s/logs\n' "$d" >"$d/service/w0/log/run"
		chmod +x "$d/service/w0/log/run"
		echo s0 >"$d/logs/config" # no rotation: keep every line
	fi
	# runsvdir postpones its first scan by a second when the service
	# directory changed within the current second: date it back, as a
	# directory prepared in advance would be.
	touch -d "@$(($(date +%s) - 10))" "$d/service"
}
start_runit() { (cd "$1" && "$B" spawn "$1/runsvdir.out" runsvdir "$1/service"); }
# As runit's own stage 3 does: runsvdir first (SIGTERM: it exits at once,
# leaving the runsv processes; else it would restart the runsv processes that
# are told to exit), then sv. runsv never sends SIGKILL by itself: sv's
# force-shutdown does, after -w seconds, and it makes runsv exit.
stopcmd_runit() {
	printf 'kill -TERM %s\nexec sv -w %s force-shutdown %s/service/*\n' "$2" "$STOP_TIMEOUT_S" "$1" >"$1/stop.sh"
	echo sh "$1/stop.sh"
}
logfiles_runit() { echo "$1"/logs/current; }

setup_s6() {
	local d=$1 mode=$2 n=$3 lines=${4:-0} i
	mkdir -p "$d/scan"
	make_services "$d/scan" "$n" "$mode" "$d/stamps" "$lines"
	for ((i = 0; i < n; i++)); do
		echo $((STOP_TIMEOUT_S * 1000)) >"$d/scan/w$i/timeout-kill" # SIGKILL this long after the down signal
	done
	if [ "$mode" = lines ]; then
		mkdir -p "$d/scan/w0/log" "$d/logs"
		printf '#!/bin/sh\nexec s6-log s268435455 %s/logs\n' "$d" >"$d/scan/w0/log/run" # largest file size: no rotation
		chmod +x "$d/scan/w0/log/run"
	fi
}
start_s6() { (cd "$1" && "$B" spawn "$1/s6-svscan.out" s6-svscan -c 4096 "$1/scan"); }
stopcmd_s6() { echo s6-svscanctl -t "$1/scan"; }
logfiles_s6() { echo "$1"/logs/current; }

# ---------------------------------------------------------------- plumbing

D=""
begin() { # SV SCENARIO: a fresh directory D
	D=$T/$1-$2
	rm -rf "$D"
	mkdir -p "$D"
}
start() { read -r SPID T0 < <("start_$1" "$D"); }
# kill everything of the scenario, check that nothing is left, remove its files
finish() {
	local left
	left=$("$B" cleanup "$T")
	[ "$left" = 0 ] || log "WARNING: $left process(es) of $D could not be killed"
	read -r left _ < <("$B" count "$T")
	[ "$left" = 0 ] || log "WARNING: $left process(es) still name $T"
	rm -rf "$D"
}
wait_started() { # COUNT TIMEOUT_MS: sets GOT and LAST (newest first-cycle stamp)
	read -r GOT LAST < <("$B" stamps "$D/stamps" "$1" "$2")
}

declare -A CELL NUM
reset_cells() {
	local sv
	for sv in $SUPS; do CELL[$sv]="—" NUM[$sv]=""; done
}
# one table row; the last column is ward's figure divided by the best (lowest) other one
row() {
	local title=$1 sv best="" bestsv="" ratio="—"
	for sv in supervisord runit s6; do
		[ -n "${NUM[$sv]}" ] || continue
		if [ -z "$best" ] || awk -v a="${NUM[$sv]}" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=${NUM[$sv]} bestsv=$sv
		fi
	done
	if [ -n "${NUM[ward]}" ] && [ -n "$best" ]; then
		if awk -v b="$best" 'BEGIN { exit !(b > 0) }'; then
			ratio="$(awk -v a="${NUM[ward]}" -v b="$best" 'BEGIN { r = a / b; printf (r < 0.1 ? "%.3f" : "%.2f"), r }') ($bestsv)"
		elif awk -v a="${NUM[ward]}" 'BEGIN { exit !(a == 0) }'; then
			ratio="equal: 0 ($bestsv too)"
		else
			ratio="— ($bestsv: 0)"
		fi
	fi
	[ -n "${RATIO_TEXT:-}" ] && ratio=$RATIO_TEXT
	echo "| $title | ${CELL[ward]} | ${CELL[supervisord]} | ${CELL[runit]} | ${CELL[s6]} | $ratio |"
	RATIO_TEXT=""
	reset_cells
}

# ---------------------------------------------------------------- scenarios

# the restart scenario's figures, for the command scenario's ratios
declare -A RESTART_CELL RESTART_MED
scen_restart() {
	local sv r got med p90 p99
	reset_cells
	for sv in $SUPS; do
		# the others wait about a second before each restart: fewer of them
		r=$RESTARTS_OTHER
		[ "$sv" = ward ] && r=$RESTARTS_WARD
		log "restart: $sv, $r restarts"
		begin "$sv" restart
		"setup_$sv" "$D" crash 1
		start "$sv"
		read -r got med p90 p99 < <("$B" restarts "$D/stamps" "$r" $((20000 + r * 1500)))
		finish
		if [ "$got" -ge "$r" ]; then
			CELL[$sv]="median $(ns2ms "$med") ms, p90 $(ns2ms "$p90") ms, p99 $(ns2ms "$p99") ms ($r restarts)"
			NUM[$sv]=$med
		else
			CELL[$sv]="only $got restarts in $((20 + r * 3 / 2)) s"
		fi
		RESTART_CELL[$sv]=${CELL[$sv]} RESTART_MED[$sv]=${NUM[$sv]}
	done
	row "restart latency: worker dies by SIGSEGV → its replacement runs its first cycle (fastest restart setting)"
}

# A ÷ B with 2 decimals (or fewer for big ratios); "—" when either is missing
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "—"; else { r = a / b; printf (r >= 100 ? "%.0f" : "%.2f"), r } }'; }

# Command workers (issue 17): ward running bench/worker.c, the program the
# others run, next to the floor (a loop that only forks, execs and waits for
# that program) and to ward's plugin workers. Run after `restart` for the
# others' figures and ward's plugin restart in the same run.
scen_command() {
	local r=$RESTARTS_WARD got med p90 p99 fmed fp99 cmed n=1000 k sv
	local -a pboot=() cboot=()
	log "command: the floor, fork + exec of bench/worker.c (${BENCH_WORKER_LINK:-dynamic}), $r restarts"
	begin floor restart
	read -r got fmed p90 fp99 < <("$B" floor "$W" "$D/stamps" "$r")
	finish
	reset_cells
	CELL[ward]="median $(ns2ms "$fmed") ms, p90 $(ns2ms "$p90") ms, p99 $(ns2ms "$fp99") ms ($got restarts)"
	CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
	RATIO_TEXT="the floor: no supervisor"
	row "floor: a bare loop (\`benchtool floor\`) forks, execs bench/worker.c (${BENCH_WORKER_LINK:-dynamic}ally linked), which stamps and dies by SIGSEGV, and waits for it → the next stamp"

	log "command: ward running bench/worker.c as a command worker, $r restarts"
	begin ward cmdrestart
	setup_wardcmd "$D" crash 1
	start ward
	read -r got med p90 p99 < <("$B" restarts "$D/stamps" "$r" $((20000 + r * 1500)))
	finish
	reset_cells
	if [ "$got" -ge "$r" ]; then
		CELL[ward]="median $(ns2ms "$med") ms, p90 $(ns2ms "$p90") ms, p99 $(ns2ms "$p99") ms ($r restarts)"
		NUM[ward]=$med cmed=$med
	else
		CELL[ward]="only $got restarts in $((20 + r * 3 / 2)) s" cmed=""
	fi
	for sv in supervisord runit s6; do
		CELL[$sv]="${RESTART_CELL[$sv]:-not run (BENCH_ONLY without restart)}" NUM[$sv]=${RESTART_MED[$sv]:-}
	done
	RATIO_TEXT="ward command ÷ floor $(ratio "$cmed" "$fmed") (target ≤ 1.5); runit ÷ ward command $(ratio "${RESTART_MED[runit]:-}" "$cmed"), s6 ÷ ward command $(ratio "${RESTART_MED[s6]:-}" "$cmed") (target ≥ 1000); ward plugin ÷ floor $(ratio "${RESTART_MED[ward]:-}" "$fmed")"
	row "restart latency, ward running bench/worker.c as a command worker (\`command = worker crash 0 FILE\`): SIGSEGV → the replacement's stamp; the others as in the restart row"

	# alternating, so that both see the same machine; the median of each
	for ((k = 0; k < BOOT_REPS; k++)); do
		log "command: boot, ward, $n plugin workers ($((k + 1))/$BOOT_REPS)"
		begin ward "pboot$n"
		setup_ward "$D" idle "$n"
		start ward
		wait_started "$n" 120000
		[ "$GOT" -eq "$n" ] && pboot+=("$(awk -v a="$LAST" -v b="$T0" 'BEGIN { print (a - b) / 1e6 }')")
		finish
		log "command: boot, ward, $n command workers ($((k + 1))/$BOOT_REPS)"
		begin ward "cboot$n"
		setup_wardcmd "$D" idle "$n"
		start ward
		wait_started "$n" 120000
		[ "$GOT" -eq "$n" ] && cboot+=("$(awk -v a="$LAST" -v b="$T0" 'BEGIN { print (a - b) / 1e6 }')")
		finish
	done
	reset_cells
	CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
	local pm cm
	pm=$(printf '%s\n' "${pboot[@]}" | median) cm=$(printf '%s\n' "${cboot[@]}" | median)
	if [ ${#cboot[@]} = 0 ] || [ ${#pboot[@]} = 0 ]; then
		CELL[ward]="command: ${#cboot[@]} of $BOOT_REPS boots complete, plugin: ${#pboot[@]} of $BOOT_REPS"
	else
		CELL[ward]="command $(fmt "$cm") ms, plugin $(fmt "$pm") ms (median of ${#cboot[@]} boots each: command $(for v in "${cboot[@]}"; do printf '%s ' "$(fmt "$v")"; done | sed 's/ $//'), plugin $(for v in "${pboot[@]}"; do printf '%s ' "$(fmt "$v")"; done | sed 's/ $//') ms)"
	fi
	RATIO_TEXT="command ÷ plugin $(ratio "$cm" "$pm") (target ≤ 2)"
	row "boot $n workers, ward: start of \`ward run\` → every stamp; $n command workers running bench/worker.c against $n plugin workers running \`stamp\`"
}

scen_boot() {
	local n=$1 sv srss spss sn wpss wn
	declare -A boot mem wmem
	for sv in $SUPS; do
		log "boot: $sv, $n workers"
		begin "$sv" "boot$n"
		"setup_$sv" "$D" idle "$n"
		start "$sv"
		wait_started "$n" 120000
		if [ "$GOT" -eq "$n" ]; then
			sleep 0.3
			read -r srss spss sn _ wpss wn < <("$B" mem "$T" "$SPID")
			boot[$sv]="$(fmt "$(awk -v a="$LAST" -v b="$T0" 'BEGIN { print (a - b) / 1e6 }')") ms|$(awk -v a="$LAST" -v b="$T0" 'BEGIN { print (a - b) / 1e6 }')"
			mem[$sv]="RSS $(awk -v a="$srss" 'BEGIN { printf "%.1f", a / 1024 }') MiB (PSS $(awk -v a="$spss" 'BEGIN { printf "%.1f", a / 1024 }') MiB, $sn process$([ "$sn" = 1 ] || echo es))|$srss"
			wmem[$sv]="PSS $(awk -v a="$wpss" 'BEGIN { printf "%.1f", a / 1024 }') MiB ($(awk -v a="$wpss" -v n="$wn" 'BEGIN { printf "%.0f", a / (n ? n : 1) }') KiB each)|$wpss"
		else
			boot[$sv]="only $GOT of $n started in 120 s|"
			mem[$sv]="—|" wmem[$sv]="—|"
		fi
		finish
	done
	reset_cells
	for sv in $SUPS; do CELL[$sv]=${boot[$sv]%|*} NUM[$sv]=${boot[$sv]#*|}; done
	row "boot $n workers: start of the supervisor → every worker in its first cycle"
	for sv in $SUPS; do CELL[$sv]=${mem[$sv]%|*} NUM[$sv]=${mem[$sv]#*|}; done
	row "memory after booting $n: every supervisor-side process (RSS; PSS shares libraries fairly)"
	for sv in $SUPS; do CELL[$sv]=${wmem[$sv]%|*} NUM[$sv]=${wmem[$sv]#*|}; done
	row "memory of those $n workers themselves (PSS; ward's are forks of ward (its spawner) running the plugin runtime, the others a small C program)"
}

idle_one() { # SV: sets IDLE_CPU IDLE_WAKE
	local sv=$1 cpu ctx m
	begin "$sv" idle
	"setup_$sv" "$D" idle "$N"
	start "$sv"
	wait_started "$N" 60000
	sleep 1.5 # let the boot settle (ward: the history batch)
	read -r cpu ctx m < <("$B" usage "$T" "$SPID" "$IDLE_S")
	finish
	if [ "$GOT" -eq "$N" ]; then
		IDLE_CPU=$cpu IDLE_WAKE=$(awk -v c="$ctx" -v s="$IDLE_S" 'BEGIN { printf "%.2f", c / s }') IDLE_PROCS=$m
	else
		IDLE_CPU="" IDLE_WAKE="" IDLE_PROCS=0
	fi
}

scen_idle() {
	local sv
	declare -A cpu wake procs
	for sv in $SUPS; do
		log "idle: $sv, $N workers, ${IDLE_S} s"
		idle_one "$sv"
		cpu[$sv]=$IDLE_CPU wake[$sv]=$IDLE_WAKE procs[$sv]=$IDLE_PROCS
	done
	log "idle: ward with its default watchdog (60s)"
	WARD_WATCHDOG=60s idle_one ward
	reset_cells
	for sv in $SUPS; do
		[ -n "${cpu[$sv]}" ] && CELL[$sv]="$(fmt "${cpu[$sv]}") ms ($(fmt "$(awk -v a="${cpu[$sv]}" -v s="$IDLE_S" 'BEGIN { print a / s }')") ms/s)" NUM[$sv]=${cpu[$sv]}
	done
	CELL[ward]="${CELL[ward]}; watchdog 60s: $(fmt "$IDLE_CPU") ms"
	row "idle: $N idle workers for $IDLE_S s: CPU time of every supervisor-side process (ward: watchdog off, as the others have none)"
	for sv in $SUPS; do
		[ -n "${wake[$sv]}" ] && CELL[$sv]="${wake[$sv]}/s (${procs[$sv]} process$([ "${procs[$sv]}" = 1 ] || echo es))" NUM[$sv]=${wake[$sv]}
	done
	CELL[ward]="${CELL[ward]}; watchdog 60s: $IDLE_WAKE/s"
	row "idle: wakeups (context switches) per second, every supervisor-side process"
}

scen_stop() {
	local sv ms left all w
	declare -A deaf coop killed
	for sv in $SUPS; do
		log "stop: $sv, $N workers ignoring SIGTERM"
		begin "$sv" stopdeaf
		"setup_$sv" "$D" ignore-term "$N"
		start "$sv"
		wait_started "$N" 60000
		sleep 0.3
		# shellcheck disable=SC2046 # the stop command is words
		read -r ms left < <("$B" waitgone "$T" 15000 $("stopcmd_$sv" "$D" "$SPID"))
		finish
		deaf[$sv]="$(fmt "$ms") ms, $left left|$ms"
		[ "$GOT" -eq "$N" ] || deaf[$sv]="only $GOT of $N started|"

		log "stop: $sv, $N cooperative workers"
		begin "$sv" stopcoop
		"setup_$sv" "$D" idle "$N"
		start "$sv"
		wait_started "$N" 60000
		sleep 0.3
		# shellcheck disable=SC2046
		read -r ms left < <("$B" waitgone "$T" 5000 $("stopcmd_$sv" "$D" "$SPID"))
		finish
		coop[$sv]="$(fmt "$ms") ms, $left left$(awk -v a="$ms" 'BEGIN { if (a > 200) print " (over 200 ms)" }')|$ms"
		[ "$GOT" -eq "$N" ] || coop[$sv]="only $GOT of $N started|"

		log "stop: $sv, SIGKILL of the supervisor with $N workers"
		begin "$sv" kill
		"setup_$sv" "$D" idle "$N"
		start "$sv"
		wait_started "$N" 60000
		sleep 0.3
		kill -KILL "$SPID"
		sleep 1
		read -r all w < <("$B" count "$T")
		finish
		killed[$sv]="$w of $N workers still running$([ $((all - w)) -gt 0 ] && echo ", and $((all - w)) supervisor processes")|$w"
	done
	# runit: what the supervisor does on its own, without sv's SIGKILL
	log "stop: runit, runsvdir SIGHUP alone, $N workers ignoring SIGTERM"
	begin runit stophup
	setup_runit "$D" ignore-term "$N"
	start runit
	wait_started "$N" 60000
	sleep 0.3
	read -r ms left < <("$B" waitgone "$T" 3000 kill -HUP "$SPID")
	finish
	deaf[runit]="${deaf[runit]%|*} (SIGTERM to runsvdir, then \`sv -w $STOP_TIMEOUT_S force-shutdown\`; runsvdir's SIGHUP alone never SIGKILLs: $left left after 3 s)|${deaf[runit]#*|}"

	reset_cells
	for sv in $SUPS; do CELL[$sv]=${deaf[$sv]%|*} NUM[$sv]=${deaf[$sv]#*|}; done
	row "stop $N workers that ignore SIGTERM, stop timeout ${STOP_TIMEOUT_S} s: stop command → all gone; leftovers (must be 0)"
	for sv in $SUPS; do CELL[$sv]=${coop[$sv]%|*} NUM[$sv]=${coop[$sv]#*|}; done
	row "stop $N cooperative workers: stop command → all gone (target ≤ 200 ms)"
	for sv in $SUPS; do CELL[$sv]=${killed[$sv]%|*}; done
	RATIO_TEXT="ward ${killed[ward]#*|}, best other $(for sv in supervisord runit s6; do echo "${killed[$sv]#*|}"; done | sort -n | head -1)"
	row "SIGKILL of the supervisor's top process with $N workers: still running 1 s later"
}

# logs_run SV LINES: one worker's LINES lines through SV; sets CELL[SV] and NUM[SV]
logs_run() {
	local sv=$1 l=$2 marker tend got ms lost end_re='x{81}$'
	local -a files
	marker="benchline $(printf %07d $((l - 1))) "
	[ "${WARD_LOG_FORMAT:-text}" = json ] && [ "$sv" = ward ] && end_re='x{81}"}$'
	begin "$sv" logs
	"setup_$sv" "$D" lines 1 "$l"
	start "$sv"
	wait_started 1 10000
	read -r tend < <("$B" waitlog "$("logfiles_$sv" "$D")" "$marker" $((30000 + l / 5)))
	# the log file and any rotated ones beside it (there should be none)
	case $sv in
	ward | supervisord) files=("$("logfiles_$sv" "$D")"*) ;;
	*) files=("$(dirname "$("logfiles_$sv" "$D")")"/*) ;;
	esac
	got=$(cat "${files[@]}" 2>/dev/null | grep -c -E "benchline [0-9]{7} $end_re")
	lost=$((l - got))
	finish
	if [ "$tend" = timeout ] || [ "$GOT" -lt 1 ]; then
		CELL[$sv]="not all in $((30 + l / 5000)) s; $lost lost"
	else
		ms=$(awk -v a="$tend" -v b="$LAST" 'BEGIN { print (a - b) / 1e6 }')
		CELL[$sv]="$(fmt "$ms") ms, $lost lost" NUM[$sv]=$ms
	fi
}

# Every worker writes in 4 KiB blocks, as a C program does on a pipe (ward's
# runtime makes stdout line-buffered: a write per line; the last row).
# ward's other modes are set against the same figures of the others.
scen_logs() {
	local sv l=$LOG_LINES variant
	local -A keep_cell keep_num
	reset_cells
	for sv in $SUPS; do
		log "logs: $sv, $l lines"
		WARD_BLOCK_BUFFERED=yes logs_run "$sv" "$l"
		keep_cell[$sv]=${CELL[$sv]} keep_num[$sv]=${NUM[$sv]}
	done
	row "logs: one worker writes $l lines of 100 bytes to stdout (4 KiB writes): its start → every line in its log file; lines lost (no rotation anywhere)"
	for variant in "stdout text" "stdout-file text" "file json" "stdout json" "file text line-buffered"; do
		# shellcheck disable=SC2086 # the variant is words
		set -- $variant
		log "logs: ward, log_output = $1, log_format = $2${3:+, $3}, $l lines"
		for sv in supervisord runit s6; do CELL[$sv]=${keep_cell[$sv]} NUM[$sv]=${keep_num[$sv]}; done
		WARD_LOG_OUTPUT=${1%-file} WARD_STDOUT=$([ "$1" = stdout-file ] && echo file || echo pipe) WARD_LOG_FORMAT=$2 \
			WARD_BLOCK_BUFFERED=$([ -n "${3:-}" ] && echo no || echo yes) logs_run ward "$l"
		case $variant in
		"stdout-file text") row "logs, ward with log_output = stdout, its stdout a file (\`ward run > file\`): the same → every line in that file; the others as above" ;;
		"stdout text") row "logs, ward with log_output = stdout (its stdout a pipe, copied into a file by a reader): the same → every line in that file; the others as above" ;;
		"file json") row "logs, ward with log_format = json: the same → every line in its log file; the others as above" ;;
		"stdout json") row "logs, ward with log_output = stdout and log_format = json: the same; the others as above" ;;
		*) row "logs, ward's worker runtime as it is (stdout line-buffered: a write per line, so a printf line survives a crash right after it): the same → every line in its log file; the others as above" ;;
		esac
	done
}

scen_cycle() {
	local out
	log "cycle: ward, $CYCLES cycles"
	reset_cells
	out=$("$WARD_BENCH" cycle "$CYCLES" 2>&1 | grep '^|' | head -1)
	CELL[ward]=$(echo "$out" | awk -F'|' '{ gsub(/^ +| +$/, "", $3); print $3 }')
	[ -n "${CELL[ward]}" ] || CELL[ward]="failed"
	CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
	RATIO_TEXT="ward only"
	row "cycle cost: empty cycles in one worker ($CYCLES cycles)"
}

# ward only: the others have no metrics endpoint (issue 15: under 10 ms a
# scrape at 1,000 workers, and an idle host with http on wakes at most once a second).
scen_scrape() {
	local n=1000 line label
	[ "${BENCH_QUICK:-no}" = yes ] && n=200
	log "scrape: ward, $n workers, GET /metrics"
	"$WARD_BENCH" scrape "$n" 2>&1 | grep '^|' | while IFS= read -r line; do
		label=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $2); print $2 }')
		reset_cells
		CELL[ward]=$(echo "$line" | awk -F'|' '{ gsub(/^ +| +$/, "", $3); print $3 }')
		CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
		RATIO_TEXT="ward only"
		row "$label"
	done
}

scen_scale() {
	local n=$1 boot srss st rc ms left all=1 w emfile
	log "scale: ward, $n workers (descriptor limit $(ulimit -n))"
	begin ward "scale$n"
	setup_ward "$D" idle "$n"
	start ward
	wait_started "$n" $((n * 30))
	boot=$(awk -v a="$LAST" -v b="$T0" 'BEGIN { printf "%.1f", (a - b) / 1e9 }')
	sleep 0.5
	read -r srss _ < <("$B" mem "$T" "$SPID")
	read -r st rc < <("$B" timecmd 5000 "$WARD" status -c "$D/conf")
	read -r ms left < <("$B" waitgone "$T" 60000 kill -TERM "$SPID")
	for _ in $(seq 50); do
		read -r all w < <("$B" count "$T")
		[ "$all" = 0 ] && break
		sleep 0.1
	done
	emfile=$(grep -c 'Too many open files' "$D/ward.out")
	finish
	reset_cells
	CELL[supervisord]="not measured" CELL[runit]="not measured" CELL[s6]="not measured"
	if [ "$GOT" -eq "$n" ]; then
		CELL[ward]="$boot s; host RSS $(awk -v a="$srss" 'BEGIN { printf "%.1f", a / 1024 }') MiB"
	else
		CELL[ward]="only $GOT of $n started in $((n * 30 / 1000)) s"
	fi
	[ "$emfile" = 0 ] || CELL[ward]="${CELL[ward]}; host: \"Too many open files\" $emfile times (descriptor limit $(ulimit -n))"
	RATIO_TEXT="ward only"
	row "scale: boot $n workers of a tiny plugin (\`ward run\` → every first cycle)"
	CELL[supervisord]="not measured" CELL[runit]="not measured" CELL[s6]="not measured"
	if [ "$rc" = timeout ]; then
		CELL[ward]="no answer within 5 s"
	else
		CELL[ward]="$(fmt "$st") ms, exit $rc$(awk -v a="$st" 'BEGIN { if (a > 1000) print " (over 1 s)" }')"
	fi
	RATIO_TEXT="ward only"
	row "scale: \`ward status\` with $n workers running (target < 1 s)"
	CELL[supervisord]="not measured" CELL[runit]="not measured" CELL[s6]="not measured"
	if [ "$left" = 0 ]; then
		CELL[ward]="$(awk -v a="$ms" 'BEGIN { printf "%.1f", a / 1000 }') s, 0 left; host $([ "$all" = 0 ] && echo exited || echo "still running")"
	else
		CELL[ward]="not stopped: $left workers still running after $(awk -v a="$ms" 'BEGIN { printf "%.0f", a / 1000 }') s (then SIGKILLed by the benchmark)"
	fi
	RATIO_TEXT="ward only"
	row "scale: stop $n workers (SIGTERM to the host → all gone)"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# wait until no worker process is left (the on-demand worker's idle exit), up to 5 s
wait_no_workers() {
	local w
	for _ in $(seq 100); do
		read -r w < <("$B" workers "$T")
		[ "$w" = 0 ] && return 0
		sleep 0.05
	done
	return 1
}

scen_ondemand() {
	local k ms reply bad=0 refused=no
	local -a cold=() warm=()
	log "on demand: ward, $ONDEMAND_REPS activations"
	begin ward ondemand
	mkdir -p "$D/conf"
	cat >"$D/conf/ward.ini" <<EOF
[ward]
plugin_dir = $(dirname "$WARD")/plugins
state_dir = ../state
autoload = no

; the example on-demand worker: started by the first connection, finishes after 1 s without clients
[od]
plugin = linesrv
listen = unix:$D/od.sock
autostart = no
idle_exit = 1s
EOF
	if "$WARD" check -c "$D/conf" 2>&1 | grep -q 'not available'; then
		refused=yes
	else
		start ward
		for _ in $(seq 100); do
			[ -S "$D/od.sock" ] && break
			sleep 0.05
		done
		for ((k = 0; k < ONDEMAND_REPS; k++)); do
			wait_no_workers || bad=$((bad + 1))
			read -r ms reply < <("$B" ask "$D/od.sock" 5000)
			if [ "$reply" = PONG ]; then cold+=("$ms"); else bad=$((bad + 1)); fi
			read -r ms reply < <("$B" ask "$D/od.sock" 5000)
			if [ "$reply" = PONG ]; then warm+=("$ms"); else bad=$((bad + 1)); fi
		done
	fi
	finish
	reset_cells
	CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
	if [ $refused = yes ]; then
		CELL[ward]="not implemented yet (\`listen\` is refused)"
	elif [ ${#cold[@]} = 0 ]; then
		CELL[ward]="no reply"
	else
		CELL[ward]="median $(printf '%s\n' "${cold[@]}" | median) ms (${#cold[@]} activations$([ $bad = 0 ] || echo ", $bad failures"))"
	fi
	RATIO_TEXT="ward only"
	row "on demand: connect + PING to a worker that is not running → PONG (the connection starts it: fork, load, init, accept)"
	CELL[supervisord]="n/a" CELL[runit]="n/a" CELL[s6]="n/a"
	if [ ${#warm[@]} != 0 ]; then
		CELL[ward]="median $(printf '%s\n' "${warm[@]}" | median) ms"
	fi
	RATIO_TEXT="ward only"
	row "on demand: the same while it runs (for comparison)"
}

trap '"$B" cleanup "$T" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM

log "supervisord $(supervisord --version 2>/dev/null), runit $(dpkg-query -W -f='${Version}' runit 2>/dev/null), s6 $(dpkg-query -W -f='${Version}' s6 2>/dev/null); quick=${BENCH_QUICK:-no}"
echo "| scenario | ward | supervisord | runit | s6 | ward ÷ best other (lower is better) |"
echo "|---|---|---|---|---|---|"
# BENCH_ONLY="restart logs ...": run only these scenarios (for working on this script)
for s in ${BENCH_ONLY:-restart command boot idle stop logs cycle scale ondemand scrape}; do
	case $s in
	boot) for n in $BOOT_SIZES; do scen_boot "$n"; done ;;
	scale) for n in $SCALE_SIZES; do scen_scale "$n"; done ;;
	*) "scen_$s" ;;
	esac
done
log "done"
