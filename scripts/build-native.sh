#!/usr/bin/env bash
# Builds native/ (the data connections' TLS engine) from source against the headers of the Node
# that runs the gateway (the `node` npm package), offline. A failed build is not fatal: the gateway
# then serves data connections with Node's TLS and says so once at start. NATIVE_REQUIRED=1 makes
# it fatal (CI and the tests of both engines). An argument builds another copy of native/ (a bench
# snapshot's) with this checkout's tools.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${1:-$root/native}"
export PATH="$root/node_modules/.bin:$PATH"
nodedir="$root/node_modules/node/node_modules/node-linux-$(node -p process.arch)"
[ -d "$nodedir/include/node" ] || nodedir="$(dirname "$(dirname "$(command -v node)")")"
# node-gyp finds node-addon-api by require() from the addon's folder: point it at ours.
export NODE_PATH="$root/node_modules"
if (cd "$target" && node-gyp rebuild --nodedir="$nodedir" --loglevel=warn); then
  exit 0
fi
echo "native/: the TLS engine did not build; data connections will use Node's TLS" >&2
[ "${NATIVE_REQUIRED:-0}" = 1 ] && exit 1
exit 0
