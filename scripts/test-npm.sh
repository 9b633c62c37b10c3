#!/usr/bin/env bash
# Packs pkg/ (built by scripts/build-wasm.sh) with `npm pack`, installs the tarball
# into an empty folder as a user would, and runs the Node test suite npm/test/ there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/package.json ] || { echo "[test-npm] pkg/ is missing: run scripts/build-wasm.sh" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd pkg && npm pack --silent --pack-destination "$work")
echo "[test-npm] packed $tarball ($(du -k "$work/$tarball" | cut -f1) KB)"
tar -tzf "$work/$tarball" | sed 's/^/[test-npm]   /'

cp npm/test/package.json npm/test/*.test.mjs npm/test/types-check.ts "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund "./$tarball" >/dev/null)
cd "$work" && node --test --test-reporter=spec ./*.test.mjs
