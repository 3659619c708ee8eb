#!/usr/bin/env bash
# npm run bench:slurm — proves sharded analysis on a real Slurm scheduler, on this machine.
#  1. installs Debian's slurm-wlm and munge if they are missing (needs root and apt);
#  2. starts a private single-node cluster (munged, slurmctld, slurmd) with its own config, ports,
#     socket and state under a temporary folder — nothing in /etc is changed;
#  3. submits examples/slurm/submit.sh: an N-task array job (one `analyze --shard K/N --partial`
#     each) and the dependent `merge`;
#  4. runs the same analysis once, in one process, and compares every metric of the two reports;
#  5. prints the wall time of the N shards (submit → merged report) against the single run;
#  6. stops its daemons and removes the folder (also on failure or Ctrl-C).
# Out of CI. Usage: scripts/bench-slurm.sh [N=2] [SAMPLES=256] [MODEL=generated ViT-small]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-2}
SAMPLES=${2:-256}
MODEL=${3:-}
CLI="node $ROOT/dist/cli.js"
[[ -f dist/cli.js ]] || npm run build

need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
if ((${#need[@]})); then
  echo "installing Debian packages: slurm-wlm munge (missing: ${need[*]})"
  [[ $(id -u) -eq 0 ]] || { echo "bench:slurm: installing packages needs root (or install slurm-wlm and munge yourself)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
  # Package scripts must not start system-wide daemons: this bench runs its own.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends slurm-wlm munge >/dev/null
  [[ -n ${added_policy:-} ]] && rm -f /usr/sbin/policy-rc.d
fi
echo "slurm: $(slurmctld -V)   munge: $(munged --version 2>&1 | head -1)"

W=$(mktemp -d /tmp/blocklens-slurm.XXXXXX)
chmod 755 "$W"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# munge: a fresh key and a private socket.
mkdir -p "$W/munge" "$W/state" "$W/spool" "$W/out" "$W/single"
chmod 700 "$W/munge"
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$W/munge/munge.key"
SOCK="$W/munge/munge.socket"
munged --foreground --force --socket="$SOCK" --key-file="$W/munge/munge.key" \
  --pid-file="$W/munge/munged.pid" --log-file="$W/munge/munged.log" --seed-file="$W/munge/seed" >"$W/munged.out" 2>&1 &
pids+=($!)

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
PORT=$((17000 + RANDOM % 2000))
cat >"$W/slurm.conf" <<CONF
ClusterName=blocklensbench
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=bench Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$W/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" >"$W/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$HOST" >"$W/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  [[ $state == idle* ]] && break
  sleep 1
done
[[ ${state:-} == idle* ]] || { echo "slurm did not come up (node state '${state:-none}'); logs:" >&2; tail -20 "$W"/*.log >&2; exit 1; }
echo "cluster up: node $HOST, $CPUS CPUs, partition bench"

if [[ -z $MODEL ]]; then
  MODEL=$W/vit_small.onnx
  node --import tsx -e "
    const { saveModelFile } = require('$ROOT/src/engine/onnx/model-file');
    const { buildVit } = require('$ROOT/test/helpers/vit-builder');
    saveModelFile('$MODEL', buildVit()).catch((e) => { console.error(e); process.exit(1); });"
fi
THREADS=$(( CPUS / N > 0 ? CPUS / N : 1 ))
echo "model $(basename "$MODEL"), $SAMPLES synthetic samples; $N shards × $THREADS threads vs one run × $CPUS threads"

# The shard script reads SLURM_CPUS_PER_TASK for --threads; ask for THREADS CPUs per task.
t0=$(date +%s.%N)
ids=$(BLOCKLENS="$CLI" bash -c "
  set -e
  sed 's/^#SBATCH --cpus-per-task=.*/#SBATCH --cpus-per-task=$THREADS/; s/^#SBATCH --mem=.*/#SBATCH --mem=2G/' examples/slurm/blocklens-shards.sbatch >'$W/shards.sbatch'
  sed 's/^#SBATCH --mem=.*/#SBATCH --mem=1G/' examples/slurm/blocklens-merge.sbatch >'$W/merge.sbatch'
  cp examples/slurm/submit.sh '$W/submit.sh'
  cp '$W/shards.sbatch' '$W/blocklens-shards.sbatch'; cp '$W/merge.sbatch' '$W/blocklens-merge.sbatch'
  '$W/submit.sh' $N '$MODEL' '$W/out' '' $SAMPLES")
array=${ids%% *}
merge=${ids##* }
echo "submitted array job $array (tasks 1-$N) and merge job $merge (afterok)"
while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do sleep 1; done
t1=$(date +%s.%N)
if [[ ! -f $W/out/report.json ]]; then
  echo "the merged report is missing; job output:" >&2
  for f in "$W"/out/*.out; do echo "== $(basename "$f")" >&2; tail -n 5 "$f" >&2; done
  exit 1
fi

t2=$(date +%s.%N)
$CLI analyze "$MODEL" --samples "$SAMPLES" --threads "$CPUS" --out "$W/single/report.json" --quiet
t3=$(date +%s.%N)

node -e "
  const fs = require('fs');
  const a = JSON.parse(fs.readFileSync('$W/out/report.json', 'utf8'));
  const b = JSON.parse(fs.readFileSync('$W/single/report.json', 'utf8'));
  const worst = {};
  const walk = (x, y, key) => {
    if (typeof x === 'number' && typeof y === 'number') {
      const d = Math.abs(x - y);
      if (!(d <= (worst[key] ?? -1))) worst[key] = d;
    } else if (x && y && typeof x === 'object') {
      for (const k of Object.keys(x)) walk(x[k], y[k], key);
    } else if (x !== y) worst[key] = Infinity;
  };
  for (const k of Object.keys(b.metrics)) walk(a.metrics[k], b.metrics[k], k);
  console.log('merged vs single run, largest |difference| per metric:');
  for (const [k, v] of Object.entries(worst)) console.log('  ' + k.padEnd(16) + v.toExponential(2));
  if (Object.values(worst).some((v) => !(v < 1e-6))) { console.error('merged report differs from the single run'); process.exit(1); }
  console.log('calibration checksum ' + (a.calibration.checksum === b.calibration.checksum ? 'equal' : 'DIFFERENT'));
"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { s = b - a; o = d - c;
  printf "wall time: %d shards on Slurm (submit -> merged report) %.1f s; one run %.1f s; shards / one run = %.2f\n", n, s, o, s / o }'
sacct_line=$(scontrol show job "$array" 2>/dev/null | grep -o 'RunTime=[^ ]*' | head -1 || true)
[[ -n $sacct_line ]] && echo "array job $array: $sacct_line"
