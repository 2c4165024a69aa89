#!/usr/bin/env bash
# Installs Knockgate as a systemd service from this checkout (after `npm ci`):
#   /opt/knockgate/          the appliance (sources, node_modules, bin/deno)
#   /etc/knockgate/          appliance.jsonc (kept across upgrades; 0600)
#   /var/lib/knockgate/      the store (made by systemd's StateDirectory=, kept on uninstall)
#   /etc/systemd/system/knockgate.service
#
#   scripts/install.sh --config FILE   first install: FILE becomes /etc/knockgate/appliance.jsonc
#   scripts/install.sh                 upgrade: replace /opt/knockgate, keep config and store
#   scripts/install.sh --uninstall     remove the unit and /opt/knockgate (config and store stay;
#                                      --purge removes them too)
#   --root DIR (or DESTDIR=DIR)        install into DIR instead of / (no systemctl calls)
#   --enable                           also `systemctl enable --now knockgate` (real root only)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${DESTDIR:-/}
CONFIG="" ACTION=install PURGE=0 ENABLE=0
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
    --root|--prefix) ROOT=${2:?$1 needs a directory}; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --enable) ENABLE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
ROOT=${ROOT%/}
OPT=$ROOT/opt/knockgate ETC=$ROOT/etc/knockgate STATE=$ROOT/var/lib/knockgate
CACHE=$ROOT/var/cache/knockgate UNIT=$ROOT/etc/systemd/system/knockgate.service
# systemctl only for the real root, and only where systemd runs.
live() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

if [ "$ACTION" = uninstall ]; then
  if live; then systemctl disable --now knockgate.service 2>/dev/null || true; fi
  rm -f "$UNIT"
  rm -rf "$OPT" "$CACHE"
  if [ "$PURGE" = 1 ]; then rm -rf "$ETC" "$STATE"; fi
  if live; then systemctl daemon-reload; fi
  # Leave no empty parents behind in a test root (never the system's own directories).
  if [ -n "$ROOT" ]; then
    for d in etc/systemd/system etc/systemd etc var/lib var/cache var opt; do
      rmdir "$ROOT/$d" 2>/dev/null || true
    done
  fi
  if [ "$PURGE" = 1 ]; then
    echo "Knockgate uninstalled, with its config and store"
  else
    echo "Knockgate uninstalled; config ${ETC#"$ROOT"} and store ${STATE#"$ROOT"} kept (--purge removes them)"
  fi
  exit 0
fi

if [ ! -e "$ETC/appliance.jsonc" ] && [ -z "$CONFIG" ]; then
  echo "install: first install needs --config FILE (start from config/appliance.jsonc and" \
    "replace its lab addresses and users)" >&2
  exit 2
fi
DENO=$("$SRC/node_modules/.bin/deno" eval --quiet 'console.log(Deno.execPath())' 2>/dev/null) || {
  echo "install: no Deno in $SRC/node_modules: run npm ci first" >&2
  exit 1
}

# The new tree is built beside the old one and swapped in, so a failed copy changes nothing.
mkdir -p "$ROOT/opt"
NEW=$(mktemp -d "$ROOT/opt/.knockgate-new.XXXXXX")
trap 'rm -rf "$NEW"' EXIT
cp -a "$SRC/mod.ts" "$SRC/deno.json" "$SRC/deno.lock" "$SRC/package.json" "$SRC/README.md" \
  "$SRC/src" "$SRC/ui" "$SRC/config" "$SRC/docs" "$NEW/"
# node_modules may be a symlink (a git worktree): copy what it points to.
cp -a "$SRC/node_modules/." "$NEW/node_modules"
mkdir -p "$NEW/bin"
cp "$DENO" "$NEW/bin/deno"
find "$NEW" -name '*_test.ts' -delete
chmod 0755 "$NEW"
rm -rf "$OPT.old"
if [ -e "$OPT" ]; then mv "$OPT" "$OPT.old"; fi
mv "$NEW" "$OPT"
trap - EXIT
rm -rf "$OPT.old"

install -d -m 0700 "$ETC" "$STATE"
if [ -n "$CONFIG" ]; then install -m 0600 "$CONFIG" "$ETC/appliance.jsonc"; fi
install -D -m 0644 "$SRC/config/knockgate.service" "$UNIT"
echo "Knockgate installed in ${OPT#"$ROOT"}${ROOT:+ under $ROOT}; config ${ETC#"$ROOT"}/appliance.jsonc"
if live; then
  systemctl daemon-reload
  if [ "$ENABLE" = 1 ]; then systemctl enable --now knockgate.service; fi
  if systemctl is-active --quiet knockgate.service; then
    echo "restart it to run the new version: systemctl restart knockgate"
  elif [ "$ENABLE" = 0 ]; then
    echo "start it: systemctl enable --now knockgate"
  fi
fi
