#!/usr/bin/env bash
# CI stage: `m2kd sweep --executor slurm` against a real Slurm on this host. Installs Debian's
# slurmctld, slurmd, slurm-client and munge (apt), writes a one-node configuration for the local
# host into a private folder (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none: no cgroups),
# starts munged, slurmctld and slurmd, runs dist/test/sweep-slurm.test.js (M2KD_SLURM_TEST=1), stops
# the daemons it started and ends with "N passed, N failed". Where Slurm cannot be installed or
# started it says so and prints "0 passed, 0 failed". Needs root and a built tree (npm ci / tsc).
# Usage: bash scripts/ci-slurm.sh        (M2KD_SLURM_KEEP=1 keeps the state folder for a look)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
skip() {
  echo "== slurm stage skipped: $1"
  echo "0 passed, 0 failed"
  exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (to install and start munge and the Slurm daemons)"
[ -f dist/test/sweep-slurm.test.js ] || { echo "dist/test/sweep-slurm.test.js is missing (run npx tsc -p tsconfig.json)"; echo "0 passed, 1 failed"; exit 1; }

need=()
for c in slurmctld slurmd sbatch munged; do command -v "$c" >/dev/null || need+=("$c"); done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing slurmctld slurmd slurm-client munge (missing: ${need[*]})"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge; } >/tmp/m2kd-slurm-apt.log 2>&1; then
    tail -n 5 /tmp/m2kd-slurm-apt.log
    skip "apt-get could not install slurmctld slurmd slurm-client munge"
  fi
fi
for c in slurmctld slurmd sbatch squeue scontrol scancel munged; do command -v "$c" >/dev/null || skip "$c is not installed"; done

D=$(mktemp -d /tmp/m2kd-slurm.XXXXXX)
chmod 755 "$D"
started=()
cleanup() {
  # cancel whatever is still queued on our private cluster, let the tasks end, then stop the
  # daemons this script started, by pid
  if [ -n "${SLURM_CONF:-}" ] && [ -s "$D/slurmctld.pid" ]; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
      echo "== cancelling leftover jobs: $(echo $jobs)"
      scancel $jobs 2>/dev/null
      for _ in $(seq 1 60); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
    fi
  fi
  for p in "${started[@]}"; do kill "$p" 2>/dev/null; done
  for _ in $(seq 1 20); do
    alive=0
    for p in "${started[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.5
  done
  for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ "${M2KD_SLURM_KEEP:-0}" = 1 ] || rm -rf "$D"
}
trap cleanup EXIT

# munge: our own key, socket and pid file (leaves any system munged alone)
muser=munge; id munge >/dev/null 2>&1 || muser=root
mkdir -p "$D/munge" "$D/munge-run"
chown "$muser" "$D/munge" "$D/munge-run"
chmod 700 "$D/munge"
chmod 755 "$D/munge-run"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chown "$muser" "$D/munge/munge.key"
chmod 400 "$D/munge/munge.key"
MSOCK="$D/munge-run/munge.socket"
runuser -u "$muser" -- munged --key-file="$D/munge/munge.key" --socket="$MSOCK" --pid-file="$D/munge-run/munged.pid" \
  --log-file="$D/munge/munged.log" --seed-file="$D/munge/munge.seed" $([ "$muser" = root ] && echo --force) \
  || skip "munged did not start: $(tail -n 2 "$D/munge/munged.log" 2>/dev/null)"
for _ in $(seq 1 20); do [ -s "$D/munge-run/munged.pid" ] && break; sleep 0.2; done
started+=("$(cat "$D/munge-run/munged.pid")")

host=$(hostname -s)
node=$(slurmd -C | head -n 1)
case "$node" in NodeName=*) ;; *) skip "slurmd -C did not describe this host: $node" ;; esac
mkdir -p "$D/state" "$D/spool"
cat >"$D/slurm.conf" <<CONF
ClusterName=m2kd-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MSOCK
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmctldPort=${M2KD_SLURMCTLD_PORT:-6817}
SlurmdPort=${M2KD_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=15
MinJobAge=600
SchedulerParameters=sched_interval=2
$node State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"

slurmctld -i -f "$SLURM_CONF" || skip "slurmctld did not start: $(tail -n 3 "$D/slurmctld.log" 2>/dev/null)"
for _ in $(seq 1 20); do [ -s "$D/slurmctld.pid" ] && break; sleep 0.2; done
[ -s "$D/slurmctld.pid" ] && started+=("$(cat "$D/slurmctld.pid")")
slurmd -f "$SLURM_CONF" || skip "slurmd did not start: $(tail -n 3 "$D/slurmd.log" 2>/dev/null)"
for _ in $(seq 1 20); do [ -s "$D/slurmd.pid" ] && break; sleep 0.2; done
[ -s "$D/slurmd.pid" ] && started+=("$(cat "$D/slurmd.pid")")

ready=0
for _ in $(seq 1 60); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then ready=1; break; fi
  sleep 0.5
done
if [ $ready -eq 0 ]; then
  sinfo 2>&1 | tail -n 3
  tail -n 5 "$D/slurmctld.log" "$D/slurmd.log" 2>/dev/null
  skip "the Slurm node did not come up"
fi
echo "== Slurm $(sinfo --version | awk '{print $2}') up on $host ($(sinfo -h -o '%c CPUs, %m MB, partition %P')) in $(( $(date +%s) - start )) s"

M2KD_SLURM_TEST=1 node scripts/run-tests.js dist/test/sweep-slurm.test.js
rc=$?
echo "== slurm stage: exit $rc in $(( $(date +%s) - start )) s"
exit $rc
