# SUT driver "palisade-run": the product as a user runs it. `palisade setup
# --non-interactive` writes a data directory with the defaults a user gets
# (media anchored by the relay, call records and call traces on, topology
# hiding, the guard), only the addresses are the bench's: inside $SUT_IP,
# outside $SUT_OUT_IP, the IP-PBX is the sipp UAC ($UAC_IP:$UAC_PORT), the ITSP
# the sipp UAS ($UAS_IP:$UAS_PORT). Then `palisade run` on it. The unit listens
# on the default port 5060 of its own loopback addresses, so run sip-load.sh
# with SUT_PORT=5060 and SUT_IP set (bench/sip/run.sh does).
# Knobs: PALISADE_BIN (bin/palisade), SUT_CPUS, PALISADE_PPROF=FILE (CPU
# profile of the unit over admin.sock, PPROF_S seconds starting 3 s into the run),
# PALISADE_MEMSTATS=1 (memstats.out: media calls up, heap+stacks, RSS every second).
. "$BENCH_DIR/sut/kamailio.sh"   # kam_start for the TLS peer

sut_start() {
	local max=$1 data="$RUN_DIR/data"
	local bin=${PALISADE_BIN:?set PALISADE_BIN}
	local itsp=(--itsp-address "${UAS_IP:?}:${UAS_PORT:?}")
	if [ "${PALISADE_TLS:-0}" = 1 ]; then
		# The ITSP is a Kamailio speaking TLS (its certificate: tools/mkcert.sh),
		# relaying to the sipp UAS over UDP.
		local kp=${KAM_TLS_PORT:-15061}
		kam_start kamailio-peer "$max" "udp:127.0.0.1:${KAM_UDP_PORT:-15062}" "tls:127.0.0.1:$kp" "$UAS_URI" "${PEER_CPUS:-}" || return 1
		PEER_PID=$LAST_PID
		itsp=(--itsp-address "127.0.0.1:$kp" --itsp-transport tls)
	fi
	"$bin" setup --non-interactive --data "$data" --admin-password bench-admin-pw \
		--inside-address "${SUT_IP:?}" --outside-address "${SUT_OUT_IP:?}" \
		--pbx-address "${UAC_IP:?}:${UAC_PORT:?}" "${itsp[@]}" \
		>"$RUN_DIR/setup.out" 2>&1 || { echo "palisade setup failed: $(tail -3 "$RUN_DIR/setup.out")" >&2; return 1; }
	if [ "${PALISADE_TLS:-0}" = 1 ]; then
		# trust the peer's certificate the administrator's way (CA store)
		"$bin" ca import kamailio-peer "$("$BENCH_DIR/tools/mkcert.sh")/cert.pem" --data "$data" >>"$RUN_DIR/setup.out" 2>&1 ||
			{ echo "palisade ca import failed: $(tail -3 "$RUN_DIR/setup.out")" >&2; return 1; }
	fi
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
	if [ "${PALISADE_TLS:-0}" = 1 ]; then
		# the CA import went to the preliminary configuration: apply and confirm it
		{ "$bin" config apply --data "$data" && "$bin" config confirm --data "$data"; } >>"$RUN_DIR/setup.out" 2>&1 ||
			{ echo "palisade config apply/confirm failed: $(tail -3 "$RUN_DIR/setup.out")" >&2; return 1; }
	fi
	sleep 0.5
	if [ -n "${PALISADE_PPROF:-}" ]; then
		start_bg pprof $((max)) "" -- bash -c "sleep 3; exec curl -sS --unix-socket '$data/admin.sock' -o '$PALISADE_PPROF' 'http://unit/debug/pprof/profile?seconds=${PPROF_S:-10}'"
	fi
	if [ "${PALISADE_MEMSTATS:-0}" = 1 ]; then
		# once a second: media calls up, Go heap and RSS, from the unit's /metrics,
		# after a collection (the heap profile with gc=1 forces one: with GOGC=400
		# the heap in use would otherwise include up to four times the live heap in garbage)
		start_bg memstats "$max" "" -- bash -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \$!; curl -s --max-time 5 --unix-socket '$data/admin.sock' -o /dev/null 'http://unit/debug/pprof/heap?gc=1'; curl -s --max-time 2 --unix-socket '$data/admin.sock' http://unit/metrics | awk '/^palisade_media_calls_active /{c=\$2} /^go_memstats_heap_inuse_bytes /{h=\$2} /^go_memstats_stack_inuse_bytes /{k=\$2} /^process_resident_memory_bytes /{r=\$2} END{if (r) printf \"stats calls=%d heap_inuse=%d rss=%d\\n\", c, h+k, r}'; done"
	fi
	local out=""
	[ "${PALISADE_TLS:-0}" = 1 ] && out=" out=TLS->kamailio"
	SUT_DESC="palisade-run setup-defaults$out inside=$SUT_IP outside=$SUT_OUT_IP GOMAXPROCS=${GOMAXPROCS:-all}${SUT_CPUS:+ cpus=$SUT_CPUS}"
	return 0
}
