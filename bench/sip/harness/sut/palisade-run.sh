# SUT driver "palisade-run": the product as a user runs it. `palisade setup
# --non-interactive` writes a data directory with the defaults a user gets
# (media anchored by the relay, call records and call traces on, topology
# hiding, the guard), only the addresses are the bench's: inside $SUT_IP,
# outside $SUT_OUT_IP, the IP-PBX is the sipp UAC ($UAC_IP:$UAC_PORT), the ITSP
# the sipp UAS ($UAS_IP:$UAS_PORT). Then `palisade run` on it. The unit listens
# on the default port 5060 of its own loopback addresses, so run sip-load.sh
# with SUT_PORT=5060 and SUT_IP set (bench/sip/run.sh does).
# Knobs: PALISADE_BIN (bin/palisade), SUT_CPUS, PALISADE_PPROF=FILE (CPU
# profile of the unit over admin.sock, PPROF_S seconds starting 3 s into the run).
sut_start() {
	local max=$1 data="$RUN_DIR/data"
	local bin=${PALISADE_BIN:?set PALISADE_BIN}
	"$bin" setup --non-interactive --data "$data" --admin-password bench-admin-pw \
		--inside-address "${SUT_IP:?}" --outside-address "${SUT_OUT_IP:?}" \
		--pbx-address "${UAC_IP:?}:${UAC_PORT:?}" --itsp-address "${UAS_IP:?}:${UAS_PORT:?}" \
		>"$RUN_DIR/setup.out" 2>&1 || { echo "palisade setup failed: $(tail -3 "$RUN_DIR/setup.out")" >&2; return 1; }
	# --admin-listen keeps the web admin off the default 127.0.0.1:8443 that
	# a unit of someone else may hold; nothing else differs from the defaults.
	start_bg sut "$max" "${SUT_CPUS:-}" -- "$bin" run --data "$data" --admin-listen "$SUT_IP:0"
	SUT_PID=$LAST_PID
	local i
	for i in $(seq 150); do
		[ -S "$data/admin.sock" ] && break
		kill -0 "$SUT_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -S "$data/admin.sock" ] || { echo "palisade run did not start, see $RUN_DIR/sut.err" >&2; return 1; }
	sleep 0.5
	if [ -n "${PALISADE_PPROF:-}" ]; then
		start_bg pprof $((max)) "" -- bash -c "sleep 3; exec curl -sS --unix-socket '$data/admin.sock' -o '$PALISADE_PPROF' 'http://unit/debug/pprof/profile?seconds=${PPROF_S:-10}'"
	fi
	SUT_DESC="palisade-run setup-defaults inside=$SUT_IP outside=$SUT_OUT_IP GOMAXPROCS=${GOMAXPROCS:-all}${SUT_CPUS:+ cpus=$SUT_CPUS}"
}
