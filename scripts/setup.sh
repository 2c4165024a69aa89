#!/usr/bin/env bash
# Installs the Debian packages the lab, tests and benchmarks use, when missing.
# Idempotent; needs root (apt-get). Never downloads anything but Debian packages.
set -euo pipefail
need=()
for pair in ip:iproute2 ethtool:ethtool python3:python3 iperf3:iperf3 nmap:nmap hping3:hping3 tcpdump:tcpdump nft:nftables \
  chromium:chromium tmux:tmux curl:curl nc:netcat-openbsd ping:iputils-ping \
  systemd-analyze:systemd promtool:prometheus openssl:openssl firefox-esr:firefox-esr \
  etcd:etcd-server etcdctl:etcd-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# keepalived (the HA-pair lab) lives in /usr/sbin, which a non-login PATH may lack.
[ -x /usr/sbin/keepalived ] || need+=(keepalived)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing packages ${need[*]} and not root: install them with apt-get" >&2
  exit 1
fi
echo "setup: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Only promtool is wanted (the /metrics test); the package's own server is not.
if [[ " ${need[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# The HA-pair lab runs its own keepalived per namespace; the package's service must not run.
if [[ " ${need[*]} " == *" keepalived "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now keepalived >/dev/null 2>&1 || true
fi
# The etcd tests start their own clusters on free ports; the package's own member is not wanted.
if [[ " ${need[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
