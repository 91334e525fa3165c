#!/usr/bin/env bash
# Install what `make bench` needs on a fresh Debian machine: everything the tests need (radosgw and
# its Ceph daemons, via install-test-deps.sh) plus vsftpd, the protocol ceiling of
# bench/vsftpd-ceiling.ts, and openssl, which makes vsftpd's certificate and the one of radosgw's https
# port (radosgw-start.sh with RGW_SSL_PORT, for bench/curl-transfer.ts). curl comes with the test deps.
#
# Idempotent: does nothing when every binary is present. The bench starts its own vsftpd on
# 127.0.0.1 with a config in a temporary directory; the package's service (which listens on port 21
# of every address) is stopped and disabled right after this script installed it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APT_WAIT_SECONDS="${APT_WAIT_SECONDS:-900}"

bash "$SCRIPT_DIR/install-test-deps.sh"

missing=()
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-bench-deps: all present (vsftpd, openssl)"
  exit 0
fi
echo "install-bench-deps: installing ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-bench-deps: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi
# install-test-deps.sh has just run apt-get update when it installed anything; otherwise the
# package lists may be missing on a fresh image, so update once if vsftpd is not known yet.
APT_OPTS=(-o "DPkg::Lock::Timeout=${APT_WAIT_SECONDS}" -o Dpkg::Use-Pty=0)
if ! apt-cache show vsftpd >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -q
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${missing[@]}"
[ -x /usr/sbin/vsftpd ] || { echo "install-bench-deps: /usr/sbin/vsftpd still missing" >&2; exit 1; }
case " ${missing[*]} " in
  *" vsftpd "*)
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
      "${SUDO[@]}" systemctl disable --now vsftpd || echo "install-bench-deps: could not stop the vsftpd service" >&2
    fi ;;
esac
echo "install-bench-deps: installed ${missing[*]}"
