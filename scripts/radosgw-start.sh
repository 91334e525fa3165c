#!/usr/bin/env bash
# Start a fresh single-node Ceph cluster (1 mon, 1 osd, 1 radosgw) on
# loopback, as a real S3-compatible server for the integration tests.
#
#   scripts/radosgw-start.sh [STATE_DIR]      (default /tmp/s3ftpd-rgw)
#   . STATE_DIR/env                           (S3FTPD_TEST_* variables)
#   scripts/radosgw-stop.sh  [STATE_DIR]
#
#   scripts/radosgw-start.sh --restart-rgw STATE_DIR
#       Stops only that cluster's radosgw (if it still runs) and starts it
#       again with the same command and port; mon and osd, and so every
#       bucket, object and multipart upload, stay as they are. For tests that
#       take S3 away mid-transfer and bring it back.
#
# Everything (config, mon/osd data, logs, admin sockets, pid files) lives in
# STATE_DIR; every ceph tool is called with -c STATE_DIR/ceph.conf, so
# /etc/ceph and /var/{lib,log,run}/ceph are never used. No mgr is started: a
# mon + osd + rgw is enough for S3, and ceph-mgr is not installed with
# --no-install-recommends.
#
# Env (all optional):
#   RGW_PORT              S3 port on 127.0.0.1 (default 7480)
#   RGW_MON_PORT          mon port on 127.0.0.1, msgr v2 only (default 6789)
#   RGW_OBJECTSTORE       memstore (default, all data in the OSD's RAM) or
#                         bluestore (on a sparse file in STATE_DIR)
#   RGW_MEMSTORE_BYTES    memstore capacity (default 4 GiB; the OSD counts as
#                         full at 95% of it)
#   RGW_BLUESTORE_BYTES   bluestore sparse file size (default 20 GiB)
#   RGW_START_TIMEOUT     seconds to wait for each daemon (default 120)
#   RGW_SSL_PORT          also serve https on 127.0.0.1:RGW_SSL_PORT (default: off).
#                         A self-signed certificate for IP 127.0.0.1 is made in
#                         STATE_DIR/tls/ (openssl); the env file then also holds
#                         S3FTPD_TEST_S3_HTTPS_ENDPOINT and S3FTPD_TEST_S3_CA (the
#                         certificate: NODE_EXTRA_CA_CERTS / curl --cacert). The
#                         http port stays as it is.
#   S3FTPD_TEST_ACCESS_KEY / S3FTPD_TEST_SECRET_KEY            main user keys
#   S3FTPD_TEST_SCOPED_ACCESS_KEY / S3FTPD_TEST_SCOPED_SECRET_KEY  second user
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE="start"
if [ "${1:-}" = "--restart-rgw" ]; then
  MODE="restart-rgw"
  shift
  [ -n "${1:-}" ] || { echo "radosgw-start: --restart-rgw needs STATE_DIR" >&2; exit 1; }
fi
STATE_DIR="${1:-/tmp/s3ftpd-rgw}"
RGW_PORT="${RGW_PORT:-7480}"
RGW_MON_PORT="${RGW_MON_PORT:-6789}"
RGW_OBJECTSTORE="${RGW_OBJECTSTORE:-memstore}"
RGW_MEMSTORE_BYTES="${RGW_MEMSTORE_BYTES:-4294967296}"
RGW_BLUESTORE_BYTES="${RGW_BLUESTORE_BYTES:-21474836480}"
TIMEOUT="${RGW_START_TIMEOUT:-120}"
RGW_SSL_PORT="${RGW_SSL_PORT:-}"

MAIN_UID="s3ftpd-test"
MAIN_ACCESS="${S3FTPD_TEST_ACCESS_KEY:-S3FTPDTESTKEY0000001}"
MAIN_SECRET="${S3FTPD_TEST_SECRET_KEY:-s3ftpd-test-secret-0000000000000000000001}"
SCOPED_UID="s3ftpd-scoped"
SCOPED_ACCESS="${S3FTPD_TEST_SCOPED_ACCESS_KEY:-S3FTPDSCOPEDKEY00001}"
SCOPED_SECRET="${S3FTPD_TEST_SCOPED_SECRET_KEY:-s3ftpd-scoped-secret-000000000000000000001}"
# RGW does not check the region in a SigV4 credential scope against its
# zonegroup, and the default zonegroup accepts a CreateBucket without a
# LocationConstraint, which is what SDKs send for us-east-1.
REGION="us-east-1"

MARKER=".s3ftpd-rgw-state"

log() { printf '[radosgw-start %6.1fs] %s\n' "$(elapsed)" "$*"; }
T0="$(date +%s.%N)"
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "radosgw-start: $*" >&2; exit 1; }

# ---- argument checks -------------------------------------------------------
case "$STATE_DIR" in
  /*) ;;
  *) STATE_DIR="$(pwd)/$STATE_DIR" ;;
esac
STATE_DIR="${STATE_DIR%/}"
if [ -z "$STATE_DIR" ] || [ "$STATE_DIR" = "/" ]; then die "refusing STATE_DIR '/'"; fi
# ceph.conf values are not quoted, so a path with spaces would break them.
case "$STATE_DIR" in *[[:space:]]*) die "STATE_DIR must not contain whitespace" ;; esac

# ---- layout ------------------------------------------------------------------
CONF="$STATE_DIR/ceph.conf"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/log"
MON_ID="a"
RGW_NAME="client.rgw.a"

if [ "$MODE" = "restart-rgw" ]; then
  if [ ! -e "$STATE_DIR/$MARKER" ] || [ ! -f "$CONF" ]; then
    die "$STATE_DIR holds no cluster made by this script"
  fi
  # The ports the cluster was made with, whatever RGW_PORT / RGW_SSL_PORT say now.
  RGW_PORT="$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9][0-9]*\)\( .*\)\{0,1\}$/\1/p' "$CONF")"
  [ -n "$RGW_PORT" ] || die "no 'rgw frontends' line in $CONF"
  RGW_SSL_PORT="$(sed -n 's/^rgw frontends = beast .* ssl_endpoint=127\.0\.0\.1:\([0-9][0-9]*\) .*$/\1/p' "$CONF")"
fi
case "$RGW_OBJECTSTORE" in
  memstore|bluestore) ;;
  *) die "RGW_OBJECTSTORE must be memstore or bluestore, not '$RGW_OBJECTSTORE'" ;;
esac
for v in RGW_PORT RGW_MON_PORT RGW_MEMSTORE_BYTES RGW_BLUESTORE_BYTES TIMEOUT; do
  case "${!v}" in ''|*[!0-9]*) die "$v must be a number" ;; esac
done
case "$RGW_SSL_PORT" in *[!0-9]*) die "RGW_SSL_PORT must be a number" ;; esac
if [ -n "$RGW_SSL_PORT" ]; then
  command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for RGW_SSL_PORT)"
fi
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool uuidgen curl; do
  command -v "$b" >/dev/null 2>&1 || die "$b not found; run scripts/install-test-deps.sh"
done

# ---- helpers -------------------------------------------------------------------
# ceph CLI with a bounded connect time and overall time.
ceph_cli() { timeout 60 ceph -c "$CONF" --connect-timeout 20 "$@"; }

# Start a daemon in the foreground mode (-f) in the background, detached from
# our session, and record its PID in STATE_DIR/<name>.pid. radosgw-stop.sh
# kills only these PIDs.
start_daemon() {
  local name="$1"; shift
  setsid "$@" </dev/null >>"$LOG_DIR/$name.out" 2>&1 &
  echo $! >"$STATE_DIR/$name.pid"
}

# Fail if the daemon recorded in STATE_DIR/<name>.pid has died.
check_alive() {
  local pid
  pid="$(cat "$STATE_DIR/$1.pid")"
  kill -0 "$pid" 2>/dev/null || { echo "radosgw-start: $1 (pid $pid) exited" >&2; return 1; }
}

# wait_until NAME DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it
# succeeds, at most TIMEOUT seconds; fail early if daemon NAME dies.
wait_until() {
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    check_alive "$name"
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "radosgw-start: timed out after ${TIMEOUT}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# True if something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp,
# so no dependency on ss/netstat).
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# On first start radosgw creates its realm/zonegroup/zone and pools, so it
# takes a few seconds before the frontend answers; a restart answers at once.
TLS_DIR="$STATE_DIR/tls"
rgw_answers() {
  curl -s --max-time 5 "http://127.0.0.1:$RGW_PORT/" | grep -q 'ListAllMyBucketsResult' || return 1
  [ -z "$RGW_SSL_PORT" ] && return 0
  # The certificate must verify, not only the port answer (no -k).
  curl -s --max-time 5 --cacert "$TLS_DIR/cert.pem" "https://127.0.0.1:$RGW_SSL_PORT/" | grep -q 'ListAllMyBucketsResult'
}
start_rgw() {
  start_daemon rgw radosgw -c "$CONF" -n "$RGW_NAME" -f
  wait_until rgw "radosgw to answer on 127.0.0.1:$RGW_PORT" rgw_answers
}

# ---- --restart-rgw ---------------------------------------------------------------
# On a failed restart show radosgw's log tails but leave mon and osd (and the
# data) running: the caller stops the cluster with radosgw-stop.sh.
on_restart_exit() {
  local rc=$?
  [ "$rc" -ne 0 ] || return 0
  local f
  for f in "$LOG_DIR/rgw.out" "$LOG_DIR/$RGW_NAME.log"; do
    [ -s "$f" ] || continue
    echo "----- $f (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2 || true
  done
  exit "$rc"
}
if [ "$MODE" = "restart-rgw" ]; then
  trap on_restart_exit EXIT
  "$SCRIPT_DIR/radosgw-stop.sh" --rgw-only "$STATE_DIR"
  port_busy "$RGW_PORT" && die "port $RGW_PORT (RGW_PORT) is still in use on 127.0.0.1"
  if [ -n "$RGW_SSL_PORT" ]; then
    port_busy "$RGW_SSL_PORT" && die "port $RGW_SSL_PORT (https) is still in use on 127.0.0.1"
  fi
  start_rgw
  log "radosgw restarted, answering on http://127.0.0.1:$RGW_PORT${RGW_SSL_PORT:+ and https://127.0.0.1:$RGW_SSL_PORT}"
  exit 0
fi

# ---- stop a previous cluster from the same STATE_DIR -------------------------
if [ -e "$STATE_DIR/$MARKER" ]; then
  log "stopping previous cluster in $STATE_DIR"
  "$SCRIPT_DIR/radosgw-stop.sh" "$STATE_DIR"
elif [ -e "$STATE_DIR" ] && [ -n "$(ls -A "$STATE_DIR" 2>/dev/null)" ]; then
  die "$STATE_DIR exists, is not empty and was not made by this script; refusing to use it"
fi

port_busy "$RGW_PORT" && die "port $RGW_PORT (RGW_PORT) is already in use on 127.0.0.1"
port_busy "$RGW_MON_PORT" && die "port $RGW_MON_PORT (RGW_MON_PORT) is already in use on 127.0.0.1"
if [ -n "$RGW_SSL_PORT" ]; then
  port_busy "$RGW_SSL_PORT" && die "port $RGW_SSL_PORT (RGW_SSL_PORT) is already in use on 127.0.0.1"
fi

mkdir -p "$STATE_DIR"
touch "$STATE_DIR/$MARKER"   # lets radosgw-stop.sh rm -rf this dir safely
mkdir -p "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/mon" "$STATE_DIR/osd" "$STATE_DIR/rgw" "$STATE_DIR/crash"

# On any failure from here on (a failed command under set -e, a timeout, die,
# Ctrl-C): show the log tails, stop what was started, keep the logs. An EXIT
# trap rather than ERR, because ERR does not fire for exit/die and is not
# inherited by functions.
on_exit() {
  local rc=$?
  [ "$rc" -ne 0 ] || return 0
  echo "radosgw-start: FAILED (exit $rc) after $(elapsed)s; log tails follow" >&2
  local f
  for f in "$LOG_DIR"/*; do
    [ -s "$f" ] || continue
    echo "----- $f (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2 || true
  done
  RGW_STOP_KEEP_STATE=1 "$SCRIPT_DIR/radosgw-stop.sh" "$STATE_DIR" >&2 || true
  echo "radosgw-start: logs kept in $LOG_DIR; remove with scripts/radosgw-stop.sh $STATE_DIR" >&2
  exit "$rc"
}
trap on_exit EXIT

FSID="$(uuidgen)"

# ---- https (RGW_SSL_PORT only) --------------------------------------------------
RGW_FRONTENDS="beast endpoint=127.0.0.1:$RGW_PORT"
if [ -n "$RGW_SSL_PORT" ]; then
  mkdir -p "$TLS_DIR"
  # Self-signed, valid for the address clients use (IP SAN: Node and curl check it).
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >>"$LOG_DIR/openssl.out" 2>&1
  RGW_FRONTENDS="$RGW_FRONTENDS ssl_endpoint=127.0.0.1:$RGW_SSL_PORT ssl_certificate=$TLS_DIR/cert.pem ssl_private_key=$TLS_DIR/key.pem"
fi

# ---- ceph.conf -----------------------------------------------------------------
cat >"$CONF" <<EOF
# Generated by scripts/radosgw-start.sh for the s3ftpd integration tests.
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$RGW_MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# Only msgr2; one mon port is enough and nothing here needs the old protocol.
ms bind msgr1 = false

# No cephx: no keyrings to create or distribute. Without cephx the messenger
# must be forced to crc mode; with the default "secure" preference the
# session cannot be set up and radosgw loops on error -13 forever.
auth cluster required = none
auth service required = none
auth client required = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc

# Keep every path under STATE_DIR (never /etc/ceph or /var/*/ceph).
run dir = $RUN_DIR
crash dir = $STATE_DIR/crash
keyring = $STATE_DIR/keyring
log file = $LOG_DIR/\$name.log
mon cluster log file = $LOG_DIR/cluster.log
mon data = $STATE_DIR/mon/\$id
osd data = $STATE_DIR/osd/\$id
mgr data = $STATE_DIR/mgr/\$id
mds data = $STATE_DIR/mds/\$id
rgw data = $STATE_DIR/rgw/\$id
osd journal = $STATE_DIR/osd/\$id/journal

# One OSD: replicas of 1, CRUSH picks OSDs (not hosts), few PGs, no mgr-driven
# PG autoscaling, no "no redundancy" health warning.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon warn on insecure global id reclaim allowed = false
# The mon batches map changes for 1 s by default; every pool radosgw creates
# costs two map changes, so the default made start-up (and the first bucket,
# first object and first multipart upload) take ~2 s each.
paxos propose interval = 0.05

osd objectstore = $RGW_OBJECTSTORE
memstore device bytes = $RGW_MEMSTORE_BYTES
bluestore block size = $RGW_BLUESTORE_BYTES
bluestore block create = true
# Small for a test box with 2 cores; bluestore only.
osd memory target = 1073741824

[mon]
admin socket = $RUN_DIR/\$name.asok
pid file = $RUN_DIR/\$name.pid

[osd]
admin socket = $RUN_DIR/\$name.asok
pid file = $RUN_DIR/\$name.pid
# radosgw-stop.sh stops osd and mon together; do not wait the default 5 s
# for the mon to acknowledge the OSD's shutdown.
osd mon shutdown timeout = 1

[client]
# CLI tools (ceph, radosgw-admin): no admin socket, so concurrent calls
# do not fight over one socket path.
admin socket =

[$RGW_NAME]
admin socket = $RUN_DIR/\$name.asok
pid file = $RUN_DIR/\$name.pid
rgw frontends = $RGW_FRONTENDS
# Collect deleted/overwritten objects quickly: with memstore, garbage held
# for the default 2 h would stay in RAM.
rgw gc obj min wait = 10
rgw gc processor period = 10
rgw enable usage log = false
rgw enable ops log = false
# A lifecycle "day" lasts 10 s, so a test can watch an AbortIncompleteMultipartUpload rule (the
# backstop for resumable uploads nobody continues) act; only buckets with lifecycle rules notice.
rgw lc debug interval = 10
EOF

# ---- mon -----------------------------------------------------------------------
log "creating mon.$MON_ID on 127.0.0.1:$RGW_MON_PORT (fsid $FSID, objectstore $RGW_OBJECTSTORE)"
monmaptool --create --clobber --fsid "$FSID" \
  --addv "$MON_ID" "[v2:127.0.0.1:$RGW_MON_PORT]" "$STATE_DIR/monmap" >/dev/null
ceph-mon -c "$CONF" -i "$MON_ID" --mkfs --monmap "$STATE_DIR/monmap" \
  >>"$LOG_DIR/mon.out" 2>&1
start_daemon mon ceph-mon -c "$CONF" -i "$MON_ID" -f
wait_until mon "the mon to answer" ceph_cli mon stat
log "mon up"

# ---- osd -----------------------------------------------------------------------
OSD_UUID="$(uuidgen)"
OSD_ID="$(ceph_cli osd new "$OSD_UUID")"
case "$OSD_ID" in ''|*[!0-9]*) die "unexpected answer from 'ceph osd new': $OSD_ID" ;; esac
mkdir -p "$STATE_DIR/osd/$OSD_ID"
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" \
  >>"$LOG_DIR/osd.out" 2>&1
start_daemon osd ceph-osd -c "$CONF" -i "$OSD_ID" -f
osd_up() { ceph_cli osd dump | grep -qE "^osd\.$OSD_ID up +in "; }
wait_until osd "osd.$OSD_ID to be up and in" osd_up
log "osd.$OSD_ID up"

# ---- rgw -----------------------------------------------------------------------
start_rgw
log "radosgw answering on http://127.0.0.1:$RGW_PORT${RGW_SSL_PORT:+ and https://127.0.0.1:$RGW_SSL_PORT}"

# ---- users ---------------------------------------------------------------------
rgw_admin() { timeout 60 radosgw-admin -c "$CONF" "$@"; }
rgw_admin user create --uid "$MAIN_UID" --display-name "s3ftpd integration tests" \
  --access-key "$MAIN_ACCESS" --secret-key "$MAIN_SECRET" >/dev/null
rgw_admin user create --uid "$SCOPED_UID" --display-name "s3ftpd integration tests (second user)" \
  --access-key "$SCOPED_ACCESS" --secret-key "$SCOPED_SECRET" >/dev/null
log "users $MAIN_UID and $SCOPED_UID created"

# ---- env file ------------------------------------------------------------------
ENV_FILE="$STATE_DIR/env"
{
  echo "# Source this file: . $ENV_FILE"
  printf 'export S3FTPD_TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:$RGW_PORT"
  printf 'export S3FTPD_TEST_ACCESS_KEY=%q\n' "$MAIN_ACCESS"
  printf 'export S3FTPD_TEST_SECRET_KEY=%q\n' "$MAIN_SECRET"
  printf 'export S3FTPD_TEST_SCOPED_ACCESS_KEY=%q\n' "$SCOPED_ACCESS"
  printf 'export S3FTPD_TEST_SCOPED_SECRET_KEY=%q\n' "$SCOPED_SECRET"
  printf 'export S3FTPD_TEST_REGION=%q\n' "$REGION"
  if [ -n "$RGW_SSL_PORT" ]; then
    printf 'export S3FTPD_TEST_S3_HTTPS_ENDPOINT=%q\n' "https://127.0.0.1:$RGW_SSL_PORT"
    printf 'export S3FTPD_TEST_S3_CA=%q\n' "$TLS_DIR/cert.pem"
  fi
} >"$ENV_FILE"

log "ready; env in $ENV_FILE; stop with scripts/radosgw-stop.sh $STATE_DIR"
