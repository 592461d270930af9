# SUT driver "kamailio-rtpengine": the peer pair users compare with. Kamailio
# (tm+rr proxy, CHILDREN UDP workers, default 4) whose rtpengine module does
# offer / answer / delete over ng on loopback, so media is anchored by
# rtpengine (Debian rtpengine-daemon, userspace only: table = -1, RTPE_THREADS
# threads, default 2). Both process trees count as the SUT (SUT_EXTRA_PIDS).
# Knobs: RTPE_IP (127.0.0.65: rtpengine's media address), RTPE_NG_PORT (22230),
# RTPE_CLI_PORT (29900), RTPE_PORT_MIN/MAX (40000-47999), SUT_CPUS.
. "$BENCH_DIR/sut/kamailio.sh"

sut_start() {
	local max=$1
	command -v rtpengine >/dev/null || { echo "install Debian package rtpengine-daemon" >&2; return 1; }
	export CHILDREN=${CHILDREN:-4} SUT_RTPENGINE=1 RTPE_NG_PORT=${RTPE_NG_PORT:-22230}
	port_free udp "$RTPE_NG_PORT" || { echo "udp port $RTPE_NG_PORT busy" >&2; return 1; }
	cat >"$RUN_DIR/rtpengine.conf" <<CONF
[rtpengine]
table = -1
interface = ${RTPE_IP:-127.0.0.65}
listen-ng = 127.0.0.1:$RTPE_NG_PORT
listen-cli = 127.0.0.1:${RTPE_CLI_PORT:-29900}
port-min = ${RTPE_PORT_MIN:-40000}
port-max = ${RTPE_PORT_MAX:-47999}
timeout = 60
delete-delay = 0
log-level = 4
log-stderr = true
foreground = true
CONF
	start_bg rtpengine "$max" "${SUT_CPUS:-}" -- rtpengine --config-file="$RUN_DIR/rtpengine.conf" --num-threads="${RTPE_THREADS:-2}"
	local rpid=$LAST_PID
	wait_port udp "$RTPE_NG_PORT" 15 || { echo "rtpengine did not start, see $RUN_DIR/rtpengine.err" >&2; return 1; }
	kam_start kamailio "$max" "udp:${SUT_IP:-127.0.0.1}:${SUT_PORT:-5060}" - "$UAS_URI" "${SUT_CPUS:-}" || return 1
	SUT_PID=$LAST_PID
	SUT_EXTRA_PIDS=$rpid
	sleep 0.5
	SUT_DESC="$(kam_desc "$SUT_PID") + rtpengine-$(rtpengine --version 2>&1 | awk '{print $NF; exit}') threads=${RTPE_THREADS:-2} userspace"
}
