#!/usr/bin/env bash
# Installs the Debian packages the interop tests use, when any is missing.
# Idempotent; needs root (CI and the lab machines run as root).
set -euo pipefail
pkgs=(sip-tester kamailio kamailio-tls-modules baresip-core dnsmasq-base tshark
      testssl.sh sipvicious chromium openssl iproute2 tmux rtpengine-daemon sngrep pebble
      rsyslog rsyslog-gnutls systemd groff-base make etcd-server
      debootstrap systemd-container)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "test peers: all installed"; exit 0; }
if [ "$(id -u)" != 0 ]; then
	echo "test peers missing (${missing[*]}); run as root to install them" >&2
	exit 0
fi
echo "installing test peers: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "test peers installed"
