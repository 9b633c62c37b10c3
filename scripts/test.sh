#!/usr/bin/env bash
# THE test command: installs what is missing, then runs every test of the project —
# native Rust, both WebAssembly builds in Node, headless Chrome and headless Firefox,
# the packed npm packages (in Node and in a Vite build), and the demo page. Stops at the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

passed=0
started=$SECONDS
step() { # name command...
  local name=$1 t0=$SECONDS
  shift
  echo
  echo "=== [$((passed + 1))] $name"
  if ! "$@"; then
    echo "[test] FAIL $name ($((SECONDS - t0)) s)"
    echo "$passed passed, 1 failed"
    exit 1
  fi
  passed=$((passed + 1))
  echo "[test] ok   $name ($((SECONDS - t0)) s)"
}

step "toolchain (scripts/setup.sh)" bash scripts/setup.sh
step "lint: cargo fmt --check" cargo fmt --all -- --check
step "lint: cargo clippy --workspace --all-targets -D warnings" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "msrv: the runtime builds with its rust-version (scripts/check-msrv.sh)" bash scripts/check-msrv.sh
step "native: cargo test --workspace" cargo test --workspace
step "format: files written from Python load and score like a NumPy LSTM" bash scripts/test-python-export.sh
step "wasm: build both variants and assemble pkg/" bash scripts/build-wasm.sh
for build in simd scalar; do
  for runner in node chrome firefox; do
    step "wasm-pack test: $build build in $runner" bash scripts/test-wasm.sh "$build" "$runner"
  done
done
step "npm: packed tarball in Node" bash scripts/test-npm.sh
step "bundler: both packed packages in a Vite build, in Chromium under a strict CSP; publish dry-runs (scripts/test-bundler.sh)" bash scripts/test-bundler.sh

# --- page end-to-end test ---
# The page serves the package from www/pkg/; e2e/ drives the system Chromium (playwright-core).
step "page: copy pkg/ into www/pkg/" bash -c 'rm -rf www/pkg && cp -r pkg www/pkg'
step "page: e2e dependencies (npm ci in e2e/)" bash -c 'cd e2e && npm ci --no-audit --no-fund'
step "page: end-to-end test in Chromium (e2e/page.test.mjs)" bash -c 'cd e2e && node --test page.test.mjs'

echo
echo "[test] all steps passed in $((SECONDS - started)) s"
echo "$passed passed, 0 failed"
