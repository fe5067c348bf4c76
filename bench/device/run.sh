#!/usr/bin/env bash
# Issue 13 on the 16-core device machine, in one run (about 5 minutes), figures as JSON under $OUT:
#   1. bench/cluster.py --only scaling, 1, 2, 4, 8 workers pinned, the load generator on the other cores (point 4)
#   2. bench/fanout.py, 10,000 /global sessions in process, shared against individual (point 1)
#   3. bench/scale.py, 12 workers, idle /global sessions up to 216,000 over 64 loopback addresses, a global
#      write reaching all of them at each step (point 1's 0.3 s; points 2 and 3 at that scale)
# Run it here first, small:  PY=.venv/bin/python SMALL=1 bash bench/device/run.sh
# There (the run tool, carry [".whl"]):  bash bench/device/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
RES=${OUT:-/tmp/vango-device}
mkdir -p "$RES"
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
"$PY" -c "import tornado, lz4, argon2, redis, rjsmin, msgpack, psutil, sortedcontainers, prometheus_client" || exit 1
nproc; "$PY" --version; ulimit -Hn
if [ "${SMALL:-0}" = 1 ]; then
  workers=1,2; fan=500; steps=200,500; scale_workers=2; procs=1
else
  workers=1,2,4,8; fan=10000; steps=20000,100000,216000; scale_workers=12; procs=12
fi
status=0
step() { echo "== $*"; timeout 240 "$@" 2>&1 | tee -a "$RES/log.txt" || status=1; }
step "$PY" bench/cluster.py --only scaling --workers-list "$workers" --seconds 5 --pin auto --results-dir "$RES"
step "$PY" bench/fanout.py --sessions "$fan" --writes 5 --compare --results-dir "$RES"
step "$PY" bench/scale.py --workers "$scale_workers" --procs "$procs" --sources 64 --steps "$steps" --writes 3 \
  --settle 2 --budget 150 --results-dir "$RES"
exit $status
