#!/usr/bin/env bash
# bench/sip/run.sh: the signalling benchmark (make bench-sip).
#   sipp UAC -> Palisade (UDP in, UDP out) -> sipp UAS
#   sipp UAC -> Palisade (UDP in, TLS out) -> Kamailio (TLS) -> sipp UAS
# Env: RATES_UDP (default "2500"), RATES_TLS (default "1500"), DURATION (20),
#      REPEATS (1), MEM_RATE/MEM_HOLD_MS for the memory run (500 cps, 20 s hold),
#      SKIP_TLS=1, SKIP_MEM=1. Ports are off the standard ones (15060/15070/15090, below the media relay range)
#      so a unit running on 5060 is not disturbed.
# Prints the harness RESULT lines and a summary.
set -u
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$D/../.." && pwd)
export BENCH_OUT=${BENCH_OUT:-/tmp/bench-runs}
export SUT_PORT=${SUT_PORT:-15060} UAC_PORT=${UAC_PORT:-15070} UAS_PORT=${UAS_PORT:-15090} UAC_MP=${UAC_MP:-16000} UAS_MP=${UAS_MP:-17000}
export UAS_URI="sip:127.0.0.1:$UAS_PORT"
export PALISADE_SUT="$ROOT/bin/bench-sip-sut"
mkdir -p "$ROOT/bin"
(cd "$ROOT" && go build -o "$PALISADE_SUT" ./bench/sip/sut) || exit 1
for b in sipp kamailio; do command -v $b >/dev/null || { echo "bench-sip: install $b (Debian sip-tester, kamailio kamailio-tls-modules)"; exit 1; }; done
DUR=${DURATION:-20}; REP=${REPEATS:-1}

echo "== UDP -> UDP"
"$D/harness/sweep.sh" palisade "$DUR" "$REP" ${RATES_UDP:-2500}
if [ "${SKIP_TLS:-0}" != 1 ]; then
	echo "== UDP -> TLS -> Kamailio"
	PALISADE_TLS=1 "$D/harness/sweep.sh" palisade "$DUR" "$REP" ${RATES_TLS:-1500}
fi
if [ "${SKIP_MEM:-0}" != 1 ]; then
	# Memory per established call: hold calls so that many are up at once and
	# compare the SUT's heap and RSS with the number of calls in progress.
	echo "== memory per established call"
	HOLD_MS=${MEM_HOLD_MS:-20000} RECV_TIMEOUT_MS=30000 "$D/harness/sip-load.sh" palisade ${MEM_RATE:-500} ${MEM_DUR:-20} | tee /tmp/bench-sip-mem.$$
	dir=$(sed -n 's/.* logs=\([^ ]*\).*/\1/p' /tmp/bench-sip-mem.$$); rm -f /tmp/bench-sip-mem.$$
	python3 - "$dir/sut.err" <<'PY'
import sys,re
rows=[]
for l in open(sys.argv[1], errors="replace"):
    if l.startswith("stats "):
        rows.append(dict(kv.split("=") for kv in l.split()[1:]))
if not rows: print("MEM no stats"); sys.exit()
base=rows[0]
peak=max(rows,key=lambda r:int(r["calls"]))
n=int(peak["calls"])
if n==0: print("MEM no calls held"); sys.exit()
for k in ("heap_inuse","rss"):
    print(f"MEM {k}: {(int(peak[k])-int(base[k]))/n/1024:.1f} KiB per established call ({n} calls, {int(peak[k])/2**20:.0f} MiB at peak, {int(base[k])/2**20:.0f} MiB idle)")
PY
fi
