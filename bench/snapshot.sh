#!/bin/bash
# Builds the gateway of a committed revision (default HEAD) into bench/out/<rev>/dist, so a bench
# measures a fixed revision while src/ is being edited, and two revisions can be compared:
#   bench/snapshot.sh [REV]   then   node bench/transfer.ts --gateway bench/out/<rev>/dist/cli.js
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$(git rev-parse --short "${1:-HEAD}")
out=bench/out/$rev
rm -rf "$out" && mkdir -p "$out"
git archive "$rev" src tsconfig.json package.json | tar -x -C "$out"
(cd "$out" && "$OLDPWD/node_modules/.bin/tsc" -p tsconfig.json)
# The native TLS engine of that revision, where it has one (dist/tls/ loads ../../native/build).
if git cat-file -e "$rev:native/binding.gyp" 2>/dev/null; then
  git archive "$rev" native | tar -x -C "$out"
  NATIVE_REQUIRED=1 bash scripts/build-native.sh "$PWD/$out/native" >/dev/null
fi
# Only the build stays: sources under bench/ would be type-checked again by tsconfig.test.json.
rm -rf "$out/src" "$out/tsconfig.json"
echo "$out/dist/cli.js"
