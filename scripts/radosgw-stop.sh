#!/usr/bin/env bash
# Stop the one-node Ceph cluster started by radosgw-start.sh and remove its
# state directory.
#
#   scripts/radosgw-stop.sh [STATE_DIR]      (default /tmp/s3ftpd-rgw)
#   scripts/radosgw-stop.sh --rgw-only STATE_DIR
#       Stops only radosgw and keeps mon, osd and STATE_DIR (used by
#       radosgw-start.sh --restart-rgw).
#
# Only the PIDs recorded in STATE_DIR/*.pid are signalled, and only if that
# process's command line still names STATE_DIR/ceph.conf (so a recycled PID
# belonging to something else is never killed). radosgw gets SIGTERM first,
# then osd and mon together; each step: bounded wait, then SIGKILL.
#
# Env:
#   RGW_STOP_TERM_WAIT   seconds to wait after SIGTERM (default 10)
#   RGW_STOP_KEEP_STATE  if 1, leave STATE_DIR (logs) in place; used by
#                        radosgw-start.sh when a start fails
set -euo pipefail

RGW_ONLY=0
if [ "${1:-}" = "--rgw-only" ]; then
  RGW_ONLY=1
  shift
  [ -n "${1:-}" ] || { echo "radosgw-stop: --rgw-only needs STATE_DIR" >&2; exit 1; }
fi
STATE_DIR="${1:-/tmp/s3ftpd-rgw}"
TERM_WAIT="${RGW_STOP_TERM_WAIT:-10}"
KEEP_STATE="${RGW_STOP_KEEP_STATE:-0}"
MARKER=".s3ftpd-rgw-state"

case "$STATE_DIR" in
  /*) ;;
  *) STATE_DIR="$(pwd)/$STATE_DIR" ;;
esac
STATE_DIR="${STATE_DIR%/}"
if [ -z "$STATE_DIR" ] || [ "$STATE_DIR" = "/" ]; then
  echo "radosgw-stop: refusing STATE_DIR '/'" >&2
  exit 1
fi

if [ ! -d "$STATE_DIR" ]; then
  echo "radosgw-stop: $STATE_DIR does not exist; nothing to do"
  exit 0
fi
# rm -rf only what radosgw-start.sh created: it drops a marker file first.
if [ ! -e "$STATE_DIR/$MARKER" ]; then
  echo "radosgw-stop: $STATE_DIR has no $MARKER marker; not created by radosgw-start.sh, leaving it alone" >&2
  exit 1
fi

CONF="$STATE_DIR/ceph.conf"

# Print the PID from a pid file if that process is alive and is ours.
our_pid() {
  local file="$1" pid
  [ -f "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  # cmdline is NUL-separated; look for the exact conf path as one argument.
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$CONF" || return 1
  echo "$pid"
}

# True if PID exists and is not a zombie. (When radosgw-start.sh calls this
# script after a failed start, the daemons are still its children, so they
# stay zombies until it exits; kill -0 alone would count them as running.)
running() {
  local state
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != "Z" ]
}

# stop_group NAME...: SIGTERM the daemons recorded in STATE_DIR/NAME.pid all
# at once, wait up to TERM_WAIT s, SIGKILL what is left.
stop_group() {
  local names=() pids=() name pid i deadline left
  for name in "$@"; do
    if pid="$(our_pid "$STATE_DIR/$name.pid")"; then
      names+=("$name")
      pids+=("$pid")
    fi
    rm -f "$STATE_DIR/$name.pid"
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + TERM_WAIT))
  while :; do
    left=0
    for pid in "${pids[@]}"; do running "$pid" && left=1; done
    if [ "$left" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if running "${pids[$i]}"; then
      echo "radosgw-stop: ${names[$i]} (pid ${pids[$i]}) still running ${TERM_WAIT}s after SIGTERM; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  # SIGKILL cannot be ignored; still bound the wait for the kernel to reap.
  deadline=$((SECONDS + 5))
  for pid in "${pids[@]}"; do
    while running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  echo "radosgw-stop: stopped ${names[*]} (pid ${pids[*]})"
}

# radosgw first and alone: if the OSD goes first, radosgw's shutdown blocks
# on RADOS and only its 120 s exit alarm ends it. Then osd and mon together
# (ceph.conf sets a short "osd mon shutdown timeout", so the OSD does not
# wait 5 s for a mon that is going away too). Each daemon takes ~2 s to exit.
stop_group rgw
[ "$RGW_ONLY" = "0" ] || exit 0
stop_group osd mon
# Any other pid file (none today).
for f in "$STATE_DIR"/*.pid; do
  [ -e "$f" ] || continue
  stop_group "$(basename "$f" .pid)"
done

if [ "$KEEP_STATE" = "1" ]; then
  echo "radosgw-stop: kept $STATE_DIR"
else
  rm -rf -- "$STATE_DIR"
  echo "radosgw-stop: removed $STATE_DIR"
fi
