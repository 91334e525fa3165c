#!/usr/bin/env bash
# Install the system packages the integration tests need: a single-node Ceph
# (mon + osd + radosgw) as a real S3-compatible server, the ceph CLI tools,
# lftp (an independent FTPS client), curl, rclone and HAProxy (the load
# balancer of the multi-instance test).
#
# Idempotent: if every needed binary is already on PATH it does nothing, so
# it is cheap to call at the start of every CI run.
#
# Why --no-install-recommends: the recommends of ceph-base pull in ceph-mds,
# ceph-mgr (+ its python module stack) and a time daemon, none of which a
# one-node mon/osd/rgw cluster needs; skipping them saves a lot of download
# and install time. The Depends alone give working ceph-mon, ceph-osd,
# radosgw, radosgw-admin, ceph, monmaptool and uuidgen.
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common lftp curl rclone haproxy)
# Every binary the scripts in this folder call; uuidgen comes with
# uuid-runtime, a Depends of ceph-base.
BINARIES=(radosgw ceph-mon ceph-osd ceph radosgw-admin monmaptool uuidgen lftp curl rclone haproxy)

# How long to wait for another apt/dpkg run (e.g. a provisioning step still in
# the background, or unattended-upgrades) to release the dpkg lock.
APT_WAIT_SECONDS="${APT_WAIT_SECONDS:-900}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

# True while some apt/dpkg process runs. Scans /proc directly because pgrep
# (procps) and fuser (psmisc) are not on a minimal Debian image.
apt_busy() {
  local c
  for c in /proc/[0-9]*/comm; do
    case "$(cat "$c" 2>/dev/null || true)" in
      apt|apt-get|aptitude|dpkg|unattended-upgr) return 0 ;;
    esac
  done
  return 1
}

wait_for_apt() {
  local deadline=$((SECONDS + APT_WAIT_SECONDS))
  if apt_busy; then
    echo "install-test-deps: another apt/dpkg is running; waiting up to ${APT_WAIT_SECONDS}s"
  fi
  while apt_busy; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "install-test-deps: apt/dpkg still busy after ${APT_WAIT_SECONDS}s" >&2
      exit 1
    fi
    sleep 2
  done
}

find_missing() {
  missing=()
  local b
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
}

start=$SECONDS
find_missing
# Fast path. Only trusted while no apt/dpkg runs: a background install may
# have unpacked some binaries without having finished (libraries, postinst).
if [ "${#missing[@]}" -eq 0 ] && ! apt_busy; then
  echo "install-test-deps: all present (${BINARIES[*]})"
  exit 0
fi
[ "${#missing[@]}" -eq 0 ] || echo "install-test-deps: missing: ${missing[*]}"
wait_for_apt

# A background apt run may have just installed everything we need.
find_missing
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all present after waiting for apt ($((SECONDS - start))s)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# DPkg::Lock::Timeout makes apt itself wait (bounded) if something grabs the
# lock between our check and our run.
APT_OPTS=(-o "DPkg::Lock::Timeout=${APT_WAIT_SECONDS}" -o Dpkg::Use-Pty=0)

"${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${PACKAGES[@]}"

find_missing
if [ "${#missing[@]}" -ne 0 ]; then
  echo "install-test-deps: still missing after install: ${missing[*]}" >&2
  exit 1
fi
echo "install-test-deps: installed in $((SECONDS - start))s"
