#!/bin/bash
# Same-run A/B of bench/api_ingest.py: two commits, alternately, each from `git archive`
# (PYTHONPATH=/tmp/ab-<commit>/src, this venv). The machine is noisy: compare pairs, not days.
#   bash bench/ab.sh BASE NEW PAIRS [api_ingest.py arguments...]
# prints: time, commit, events/s, events per server CPU s, single-event p99 (ms), load
cd "$(git rev-parse --show-toplevel)"
base=$1; new=$2; pairs=$3; shift 3
for c in $base $new; do [ -d /tmp/ab-$c ] || (mkdir -p /tmp/ab-$c && git archive $c | tar -x -C /tmp/ab-$c); done
for i in $(seq $pairs); do
  for c in $base $new; do
    r=$(PYTHONPATH=/tmp/ab-$c/src .venv/bin/python /tmp/ab-$c/bench/api_ingest.py "$@" 2>&1 | python3 -c "import json,sys; d=json.load(sys.stdin); b=d['batches_of_1000']; s=d['single_event']; print(b['events_per_s'], b.get('events_per_server_cpu_s'), s.get('p99_ms',''))")
    echo "$(date +%H:%M:%S) $c $r load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
