# SUT driver "palisade": the SIP subsystem alone (bench/sip/sut), UDP in, and
# out to $UAS_URI over UDP, or over TLS to a Kamailio peer when PALISADE_TLS=1:
#   sipp UAC --udp--> palisade ==TLS==> kamailio peer (tls $KAM_TLS_PORT) --udp--> sipp UAS
. "$BENCH_DIR/sut/kamailio.sh"

sut_start() {
	local max=$1 relay=$UAS_URI
	if [ "${PALISADE_TLS:-0}" = 1 ]; then
		local kp=${KAM_TLS_PORT:-15061}
		kam_start kamailio-peer "$max" "udp:127.0.0.1:${KAM_UDP_PORT:-15062}" "tls:127.0.0.1:$kp" "$UAS_URI" "${PEER_CPUS:-}" || return 1
		PEER_PID=$LAST_PID
		relay="sip:127.0.0.1:$kp;transport=tls"
	fi
	port_free udp "${SUT_PORT:-5060}" || { echo "udp port ${SUT_PORT:-5060} busy" >&2; return 1; }
	start_bg sut "$max" "${SUT_CPUS:-}" -- "${PALISADE_SUT:?build bench/sip/sut first}" \
		-listen "127.0.0.1:${SUT_PORT:-5060}" -outside 127.0.0.2 -uas "$relay"
	SUT_PID=$LAST_PID
	wait_port udp "${SUT_PORT:-5060}" 15 || { echo "SUT did not listen, see $RUN_DIR/sut.err" >&2; return 1; }
	sleep 0.5
	SUT_DESC="palisade-sip GOMAXPROCS=${GOMAXPROCS:-all} out=$( [ "${PALISADE_TLS:-0}" = 1 ] && echo "TLS->kamailio" || echo UDP)"
}
