#!/usr/bin/env bash
# Real SLURM test (not a mock): run the tiny test config through the cluster profiles on a
# single-node SLURM cluster started here, and check that it produces every output and the same
# numbers as a local run.
#
#   sudo tests/slurm/run_slurm_test.sh          # or: make test-slurm (CI: .ci/run)
#
# Steps: install Debian's slurm-wlm and munge if missing; write /etc/slurm/slurm.conf for this host
# (single node, no accounting database); start munged, slurmctld and slurmd in the foreground of
# this script and keep their process ids; run the workflow locally (the reference), through
# workflow/profiles/slurm, and its training jobs through workflow/profiles/slurm-gpu; check that
# SLURM ran the training jobs (the GPU profile's with a GPU, in the GPU partition) and the light
# rules ran locally, that the runs produced the same files, and that the results are identical;
# stop the daemons by their process ids (also on failure or Ctrl-C).
#
# The node has one fake GPU (a GRES backed by /dev/null): SLURM schedules and allocates it like a
# real one, which tests what the GPU profile asks of SLURM; the tiny config trains on the CPU.
#
# Needs root: it installs packages, writes /etc/slurm/{slurm,gres}.conf and runs the daemons with
# SlurmUser=root. That is acceptable for this throw-away single-node test cluster only; a real
# cluster runs slurmctld as an unprivileged SlurmUser. The conf must sit at the default path,
# because the plugin's job step (snakemake-executor-plugin-slurm-jobstep) drops SLURM_* variables,
# SLURM_CONF included, before it calls srun. An existing slurm.conf or gres.conf that this script
# did not write is never overwritten: the test stops instead. The script's own files are removed
# at the end. munged gets its own key and socket in the state folder, leaving any system munge
# alone.
#
# Environment: VENV (default: .venv of this checkout), CONFIG (default: .test/config/config.yaml),
# RUN_TIMEOUT (seconds per workflow run, default 1200: three runs share the cores), KEEP_STATE=1 keeps the state folder.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$REPO/.venv}
SNAKEMAKE=$VENV/bin/snakemake
PYTHON=$VENV/bin/python
CONFIG=${CONFIG:-$REPO/.test/config/config.yaml}
RUN_TIMEOUT=${RUN_TIMEOUT:-1200}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARKER="# staircase tests/slurm/run_slurm_test.sh: throw-away single-node test cluster"
PIDFILE=/run/staircase-slurm-test.pids # daemons and runs of a test killed before its cleanup
CLUSTER_RULES="train|calibrate" # rules of the tiny config's DAG that go to SLURM (regex): training and the
# calibration of the A1/A2 tests (about 80 s at 400 draws); the rest run locally
export PATH=$PATH:/usr/sbin:/sbin

T0=$SECONDS
log() { echo "[slurm-test +$((SECONDS - T0))s] $*"; }
die() {
	log "FAIL: $*"
	exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND every second until it succeeds
wait_for() {
	local limit=$1 what=$2 start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS - start < limit)) || die "timed out after ${limit}s waiting for $what"
		sleep 1
	done
}

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, writes $CONF, starts the SLURM daemons)"
[[ -x $SNAKEMAKE ]] || die "no $SNAKEMAKE: run 'make setup' first, or set VENV"
VENV=$(cd "$VENV" && pwd) # the runs change directory
SNAKEMAKE=$VENV/bin/snakemake PYTHON=$VENV/bin/python

# ---- packages ---------------------------------------------------------------------------------
missing=0
for cmd in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel srun sinfo; do
	command -v "$cmd" >/dev/null || missing=1
done
if ((missing)); then
	log "installing slurm-wlm and munge (Debian)"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq
	timeout 900 apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
log "$(slurmctld -V), $(munged -V 2>&1 | head -n 1)"

# ---- leftovers of an earlier run that was killed before its cleanup ----------------------------
if [[ -f $PIDFILE ]]; then
	while read -r pid name; do
		if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
			log "stopping $name (pid $pid) left by an earlier run"
			kill "$pid" 2>/dev/null || true
		fi
	done <"$PIDFILE"
	rm -f "$PIDFILE"
	sleep 2
fi
for f in "$CONF" "$GRES_CONF"; do
	if [[ -e $f ]] && ! grep -qxF "$MARKER" "$f"; then
		die "$f exists and was not written by this test; not touching a real cluster's configuration"
	fi
done

# ---- state folder, cleanup ---------------------------------------------------------------------
STATE=$(mktemp -d /tmp/staircase-slurm-test.XXXXXX)
chmod 755 "$STATE" # munged wants the folders above its socket executable by all
mkdir -p "$STATE"/{munge,ctld,spool,local,slurm,slurm-gpu}
MUNGED_PID="" CTLD_PID="" SLURMD_PID="" OK=0 RUN_PIDS=() RUN_DIRS=()

stop_pid() { # stop_pid PID NAME: TERM, up to 15 s, then KILL
	local pid=$1 name=$2
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 15); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) ignored TERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	log "stopped $name (pid $pid)"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	for pid in "${RUN_PIDS[@]}"; do # workflow runs still going: stop them (they cancel their jobs)
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [[ -n $CTLD_PID ]] && kill -0 "$CTLD_PID" 2>/dev/null; then
		# this cluster is ours alone: cancel whatever is left, and give slurmd time to end it
		scancel --user="$(id -un)" 2>/dev/null
		local start=$SECONDS
		while [[ -n $(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null) ]] &&
			((SECONDS - start < 30)); do sleep 1; done
	fi
	stop_pid "$SLURMD_PID" slurmd
	stop_pid "$CTLD_PID" slurmctld
	stop_pid "$MUNGED_PID" munged
	rm -f "$PIDFILE"
	for f in "$CONF" "$GRES_CONF"; do
		if [[ -f $f ]] && grep -qxF "$MARKER" "$f"; then rm -f "$f"; fi
	done
	if ((OK)) && [[ ${KEEP_STATE:-0} != 1 ]]; then
		rm -rf "$STATE"
	else
		for f in "$STATE"/*.log "$STATE"/*.out; do
			if [[ -s $f ]]; then
				echo "---- tail of $f"
				tail -n 20 "$f"
			fi
		done
		log "state kept in $STATE (daemon logs; each run's working directory and snakemake.out)"
	fi
	if ((OK)); then log "PASSED in $((SECONDS - T0))s"; else log "FAILED (exit $rc) after $((SECONDS - T0))s"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- munge ------------------------------------------------------------------------------------
SOCKET=$STATE/munge/munge.socket
mungekey --create --keyfile="$STATE/munge/munge.key" >/dev/null
munged --foreground --socket="$SOCKET" --key-file="$STATE/munge/munge.key" \
	--pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/munged.seed" \
	>"$STATE/munged.out" 2>&1 &
MUNGED_PID=$!
echo "$MUNGED_PID munged" >>"$PIDFILE"
wait_for 30 munged bash -c "munge -S '$SOCKET' -n </dev/null | unmunge -S '$SOCKET'"
log "munged running (pid $MUNGED_PID)"

# ---- slurm.conf, gres.conf ----------------------------------------------------------------------
NODE=$(hostname -s)
CPUS=$(nproc)
read -r CTLD_PORT SLURMD_PORT < <("$PYTHON" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
mkdir -p /etc/slurm
cat >"$CONF" <<EOF
$MARKER
# (removed again when the test ends; state and logs in $STATE)
ClusterName=staircase-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# root only because this is a throw-away test cluster; never on a real one
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
# no slurmdbd: sacct cannot report, so the workflow runs with --slurm-status-command squeue, and
# finished jobs must stay visible to squeue until Snakemake has seen them finish
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# memory is no consumable resource here (CR_Core) and is not enforced; declaring 64 GB with
# config_overrides lets the profiles' memory requests fit on a small machine
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=65536 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
cat >"$GRES_CONF" <<EOF
$MARKER
# one fake GPU: SLURM allocates it like a real one (and sets CUDA_VISIBLE_DEVICES); nothing uses it
NodeName=$NODE Name=gpu File=/dev/null
EOF

# ---- slurmctld, slurmd --------------------------------------------------------------------------
slurmctld -D -f "$CONF" >"$STATE/slurmctld.out" 2>&1 &
CTLD_PID=$!
echo "$CTLD_PID slurmctld" >>"$PIDFILE"
wait_for 60 slurmctld scontrol ping
slurmd -D -f "$CONF" >"$STATE/slurmd.out" 2>&1 &
SLURMD_PID=$!
echo "$SLURMD_PID slurmd" >>"$PIDFILE"
wait_for 60 "node $NODE to be idle" bash -c "sinfo -h -n '$NODE' -o %T | grep -qx idle"
log "slurmctld (pid $CTLD_PID), slurmd (pid $SLURMD_PID) up: $(sinfo -h -o '%P:%D node %c cpus %G %T' | paste -sd' ')"

# ---- the runs ---------------------------------------------------------------------------------
# All three at once: most of a SLURM run's time is spent waiting (for the scheduler, for the next
# status check), so together they take little longer than the slowest alone.

start_run() { # start_run DIR [VAR=VALUE...] -- ARGS...: the workflow in working directory DIR
	local dir=$1 vars=()
	shift
	while [[ $1 != -- ]]; do
		vars+=("$1")
		shift
	done
	shift
	(cd "$dir" && exec env "${vars[@]}" timeout "$RUN_TIMEOUT" "$SNAKEMAKE" --snakefile "$REPO/Snakefile" \
		--configfile "$CONFIG" "$@") >"$dir/snakemake.out" 2>&1 &
	RUN_PIDS+=($!)
	echo "$! timeout" >>"$PIDFILE"
	RUN_DIRS+=("$dir")
}

# The reference: the same workflow on this machine, without SLURM.
start_run "$STATE/local" -- --profile "$REPO/workflow/profiles/default" --cores 2
# The profiles as a cluster user runs them. The two options are properties of this test cluster:
# no accounting database, and short jobs (so check on them early).
TEST_CLUSTER=(--slurm-status-command squeue --slurm-init-seconds-before-status-checks 5)
start_run "$STATE/slurm" STAIRCASE_SLURM_PARTITION=debug -- \
	--profile "$REPO/workflow/profiles/slurm" "${TEST_CLUSTER[@]}"
start_run "$STATE/slurm-gpu" STAIRCASE_SLURM_PARTITION=debug STAIRCASE_SLURM_GPU_PARTITION=gpu -- \
	--profile "$REPO/workflow/profiles/slurm-gpu" "${TEST_CLUSTER[@]}" --until train
log "running: local (profiles/default), SLURM (profiles/slurm), SLURM training jobs (profiles/slurm-gpu)"
failed=0
for i in "${!RUN_PIDS[@]}"; do
	dir=${RUN_DIRS[$i]}
	if wait "${RUN_PIDS[$i]}"; then
		log "$(basename "$dir") run done: $(grep -h '^Elapsed time' "$dir/snakemake.out" | tail -n 1)"
	else
		rc=$?
		tail -n 60 "$dir/snakemake.out"
		log "$(basename "$dir") run failed with exit status $rc (124: timed out); output above"
		failed=1
	fi
done
RUN_PIDS=()
((failed == 0)) || die "a workflow run failed"

# ---- checks -----------------------------------------------------------------------------------
JOBS=$(squeue -h -t all -o '%i|%T|%P|%k')
while read -r job; do echo "    SLURM job: $job"; done <<<"$JOBS"
if echo "$JOBS" | grep -v -e '|COMPLETED|' -e '^$'; then die "SLURM jobs that did not complete (above)"; fi
if echo "$JOBS" | grep -v -E -e "\|rule_($CLUSTER_RULES)(_wildcards_.*)?$" -e '^$'; then
	die "jobs of rules other than $CLUSTER_RULES went to SLURM (above): light rules belong in" \
		"localrules: (workflow/rules/common.smk); heavy ones in CLUSTER_RULES of this script"
fi
for dir in slurm slurm-gpu; do
	grep -q "Job .* has been submitted with SLURM jobid" "$STATE/$dir/snakemake.out" ||
		die "the $dir run submitted nothing through the slurm executor"
done
echo "$JOBS" | grep -q '|COMPLETED|debug|rule_train_' || die "no completed training job in partition debug"
GPU_JOB=$(echo "$JOBS" | grep '|COMPLETED|gpu|rule_train_' | cut -d'|' -f1 | head -n 1)
[[ -n $GPU_JOB ]] || die "no completed training job in partition gpu (workflow/profiles/slurm-gpu)"
scontrol show job "$GPU_JOB" | grep -q 'gpu:1' || die "SLURM job $GPU_JOB was not given a GPU"
log "SLURM ran the training jobs: workflow/profiles/slurm's on the CPU in partition debug," \
	"workflow/profiles/slurm-gpu's with a GPU in partition gpu; the light rules ran locally"

(cd "$STATE/slurm" && "$SNAKEMAKE" --snakefile "$REPO/Snakefile" --configfile "$CONFIG" --dry-run) \
	>"$STATE/slurm/dry-run.out" 2>&1 || die "dry run after the SLURM run failed"
grep -q "Nothing to be done" "$STATE/slurm/dry-run.out" || {
	cat "$STATE/slurm/dry-run.out"
	die "the SLURM run left jobs to do"
}

"$PYTHON" "$REPO/tests/slurm/compare_runs.py" "$STATE/local" "$STATE/slurm" ||
	die "the SLURM run's results differ from the local run's"
"$PYTHON" "$REPO/tests/slurm/compare_runs.py" --runs-only "$STATE/local" "$STATE/slurm-gpu" ||
	die "the GPU profile's training results differ from the local run's"
OK=1
