#!/usr/bin/env bash
# Submits a sharded BlockLens analysis to Slurm: an N-task array job (one shard each), then the
# merge, which only starts once every shard succeeded.
#   examples/slurm/submit.sh N MODEL OUT [DATA] [SAMPLES]
# Prints the two job ids. BLOCKLENS (default `blocklens`) picks the CLI.
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 N MODEL OUT [DATA] [SAMPLES]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
N=$1 MODEL=$(realpath "$2") OUT=$(realpath -m "$3") DATA=${4:+$(realpath "$4")} SAMPLES=${5:-}
mkdir -p "$OUT"
export MODEL OUT DATA SAMPLES N BLOCKLENS=${BLOCKLENS:-blocklens}
array=$(sbatch --parsable --array="1-$N" --chdir="$OUT" --export=ALL "$here/blocklens-shards.sbatch")
merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" --kill-on-invalid-dep=yes --chdir="$OUT" --export=ALL "$here/blocklens-merge.sbatch")
echo "$array $merge"
