#!/usr/bin/env bash
# bench/sip/run.sh: the signalling benchmark (make bench-sip).
#
# 1. The product against the peer pair users compare it with, same sipp load,
#    one rate after the other (the whole sweep, past the knee):
#      sipp UAC -> `palisade run` (data directory from `palisade setup
#                  --non-interactive`: media anchored, call records, traces) -> sipp UAS
#      sipp UAC -> Kamailio (4 workers) + rtpengine (media anchored)  -> sipp UAS
# 2. For reference, the B2BUA alone (bench/sip/sut: no media, records, traces).
# 3. UDP in -> TLS out -> Kamailio through `palisade run`, and memory per
#    established call (palisade run with media anchored, then the B2BUA alone).
#
# Env: RATES ("500 1000 1500 2000 2500 3000"; each 100..5000; "" = no sweep), DURATION (20 s,
#      at most 60), RATES_B2BUA ("2500"; "" = skip), RATES_TLS ("1500"),
#      RATES_TLS_B2BUA ("": the B2BUA alone over TLS, for reference),
#      SKIP_PEER=1, SKIP_TLS=1, SKIP_MEM=1, PALISADE_PPROF=FILE (CPU profile of
#      `palisade run` at PPROF_RATE, default the highest rate), PPROF_TLS=FILE (the
#      same for the TLS run at PPROF_TLS_RATE, default each), SVG (docs/bench-sip.svg),
#      BENCH_BOOST=1: run in a session of its own whose scheduling group has
#      nice -10 (root; the kernel's sched_autogroup shares the CPUs between
#      sessions, so on a shared machine the bench otherwise gets 1/N of them
#      whatever the others' nice). Both systems run under the same conditions.
# Every RESULT line also goes to $BENCH_OUT/bench-sip-<time>.log, which
# bench/plot turns into the table and the SVG at the end.
set -u
if [ "${BENCH_BOOST:-0}" = 1 ] && [ -z "${BENCH_BOOSTED:-}" ]; then
	exec setsid env BENCH_BOOSTED=1 bash -c 'echo -10 >/proc/self/autogroup 2>/dev/null; exec bash "$0" "$@"' "$0" "$@"
fi
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$D/../.." && pwd)
H="$D/harness"
export BENCH_OUT=${BENCH_OUT:-/tmp/bench-runs}
mkdir -p "$BENCH_OUT" "$ROOT/bin"
LOG="$BENCH_OUT/bench-sip-$(date +%Y%m%d-%H%M%S).log"
RATES=${RATES-500 1000 1500 2000 2500 3000}
DUR=${DURATION:-20}
[ "$DUR" -ge 1 ] && [ "$DUR" -le 60 ] || { echo "DURATION must be 1..60 s" >&2; exit 2; }
for r in $RATES ${RATES_B2BUA-2500} ${RATES_TLS:-1500} ${RATES_TLS_B2BUA:-}; do
	[ "$r" -ge 100 ] && [ "$r" -le 5000 ] || { echo "rates must be 100..5000 calls/s, got $r" >&2; exit 2; }
done
for b in sipp kamailio; do command -v $b >/dev/null || { echo "bench-sip: install $b (Debian sip-tester, kamailio kamailio-tls-modules)"; exit 1; }; done
if [ "${SKIP_PEER:-0}" != 1 ] && ! command -v rtpengine >/dev/null; then
	echo "bench-sip: install Debian package rtpengine-daemon (scripts/install-test-peers.sh), or SKIP_PEER=1"; exit 1
fi
export PALISADE_BIN="$ROOT/bin/palisade" PALISADE_SUT="$ROOT/bin/bench-sip-sut"
(cd "$ROOT" && go build -o "$PALISADE_BIN" ./cmd/palisade && go build -o "$PALISADE_SUT" ./bench/sip/sut) || exit 1

# Loopback addresses of our own so that nobody else's unit or test on
# 127.0.0.1 collides with the unit's default ports (5060, media 20000-39999).
export UAC_PORT=${UAC_PORT:-15070} UAS_PORT=${UAS_PORT:-15090} UAC_MP=${UAC_MP:-16000} UAS_MP=${UAS_MP:-17000}
export UAC_IP=127.0.0.63 UAS_IP=127.0.0.64
export UAS_URI="sip:$UAS_IP:$UAS_PORT"
top=$(for r in $RATES; do echo "$r"; done | sort -n | tail -1)
PPROF_FILE=${PALISADE_PPROF:-}; unset PALISADE_PPROF   # only at PPROF_RATE, not inherited by every run
one() {   # one SUT RATE [env...] -> runs sip-load, logs the RESULT line
	local sut=$1 rate=$2; shift 2
	local line
	line=$(env "$@" "$H/sip-load.sh" "$sut" "$rate" "$DUR" 2>&1 | grep -E '^RESULT|busy|did not|install|failed' | tail -1)
	[ -n "$line" ] || line="NO RESULT sut=$sut rate=$rate: the run did not start (see the newest $sut directory in $BENCH_OUT)"
	echo "$line" | tee -a "$LOG"
	sleep 2   # TIME_WAIT, timers
}

echo "== UDP <-> UDP, media anchored: palisade run (setup defaults) vs Kamailio + rtpengine, ${DUR} s per rate"
for r in $RATES; do
	prof=""
	[ -n "$PPROF_FILE" ] && [ "$r" = "${PPROF_RATE:-$top}" ] && prof="PALISADE_PPROF=$PPROF_FILE"
	one palisade-run "$r" SUT_IP=127.0.0.61 SUT_OUT_IP=127.0.0.62 SUT_PORT=5060 $prof
	[ "${SKIP_PEER:-0}" = 1 ] || one kamailio-rtpengine "$r" SUT_IP=127.0.0.61 SUT_PORT=15060
done
if [ -n "${RATES_B2BUA-2500}" ]; then
	echo "== for reference only: the B2BUA alone (bench/sip/sut: SDP passed through, no records, traces or guard)"
	for r in ${RATES_B2BUA-2500}; do one palisade "$r" SUT_IP=127.0.0.1 SUT_PORT=15060; done
fi
if [ "${SKIP_TLS:-0}" != 1 ]; then
	# The ITSP is a Kamailio with TLS; the unit trusts its certificate through
	# `palisade ca import` (applied and confirmed once the unit runs).
	echo "== UDP inside -> TLS outside -> Kamailio -> sipp UAS: palisade run"
	for r in ${RATES_TLS:-1500}; do
		prof=""
		[ -n "${PPROF_TLS:-}" ] && [ "$r" = "${PPROF_TLS_RATE:-$r}" ] && prof="PALISADE_PPROF=$PPROF_TLS"
		one palisade-run "$r" SUT_IP=127.0.0.61 SUT_OUT_IP=127.0.0.62 SUT_PORT=5060 PALISADE_TLS=1 $prof
	done
	for r in ${RATES_TLS_B2BUA:-}; do one palisade "$r" SUT_IP=127.0.0.1 SUT_PORT=15060 PALISADE_TLS=1; done
fi
if [ "${SKIP_MEM:-0}" != 1 ]; then
	# Memory per established call: hold calls so that many are up at once and
	# compare the unit's heap and RSS with the number of calls in progress.
	# `palisade run`: every call has media anchored (four sockets), so the
	# rate is lower than for the B2BUA alone (descriptors: ulimit -n).
	echo "== memory per established call: palisade run (media anchored), then the B2BUA alone"
	for m in "palisade-run ${MEM_RATE_RUN:-150} memstats.out SUT_IP=127.0.0.61 SUT_OUT_IP=127.0.0.62 SUT_PORT=5060 PALISADE_MEMSTATS=1" \
	         "palisade ${MEM_RATE:-500} sut.err SUT_IP=127.0.0.1 SUT_PORT=15060"; do
		set -- $m
		sut=$1 rate=$2 file=$3; shift 3
		out=$(env "$@" HOLD_MS=${MEM_HOLD_MS:-20000} RECV_TIMEOUT_MS=30000 "$H/sip-load.sh" "$sut" "$rate" ${MEM_DUR:-20} | grep '^RESULT')
		echo "$out" | cut -c1-400
		dir=$(sed -n 's/.* logs=\([^ ]*\).*/\1/p' <<<"$out")
		python3 - "$dir/$file" "$sut" <<'PY'
import sys
rows=[]
for l in open(sys.argv[1], errors="replace"):
    if l.startswith("stats "):
        rows.append(dict(kv.split("=") for kv in l.split()[1:]))
if not rows: print("MEM no stats"); sys.exit()
base=rows[0]
peak=max(rows,key=lambda r:int(r["calls"]))
n=int(peak["calls"])
if n==0: print("MEM no calls held"); sys.exit()
# After the calls ended what stays is not per call: the trace ring (the last
# 1,000 calls' messages), caches, free memory not yet returned.
i=rows.index(peak)
after=[r for r in rows[i:] if int(r["calls"])==0]
for k in ("heap_inuse","rss"):
    line=f"MEM {sys.argv[2]} {k}: {(int(peak[k])-int(base[k]))/n/1024:.1f} KiB per established call ({n} calls, {int(peak[k])/2**20:.0f} MiB at peak, {int(base[k])/2**20:.0f} MiB idle"
    if after and int(after[-1][k]) < int(peak[k]):
        line+=f", {int(after[-1][k])/2**20:.0f} MiB after the calls ended: {(int(peak[k])-int(after[-1][k]))/n/1024:.1f} KiB per call without what stays"
    print(line+")")
PY
	done
fi
if grep -q '^RESULT sut=palisade-run' "$LOG" 2>/dev/null; then
	echo "== summary (RESULT lines in $LOG)"
	(cd "$ROOT" && go run ./bench/plot -sip "$LOG" -svg "${SVG:-docs/bench-sip.svg}")
fi
