#!/usr/bin/env bash
# Runs the wasm-bindgen tests of the kernels crate, the root crate (unit tests and the
# golden test) and the bindings crate, in the SIMD and the scalar build, in Node,
# headless Chrome and headless Firefox. Usage: scripts/test-wasm.sh [simd|scalar] [node|chrome|firefox]
# (defaults: all of them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# The runner's limit for one browser session of tests (default 20 s): the bad-input suite
# in a debug build took longer than that in Firefox on this 2-core machine while a
# training ran beside it.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}

builds=${1:-simd scalar}
runners=${2:-node chrome firefox}

for build in $builds; do
  case $build in
    simd) flags="-C target-feature=+simd128" dir=target-simd ;;
    scalar) flags="" dir=target-wasm ;;
    *) echo "[test-wasm] unknown build $build" >&2; exit 2 ;;
  esac
  for runner in $runners; do
    case $runner in
      node) args=(--node) env=() banner="" ;;
      # Without WASM_BINDGEN_USE_BROWSER the runner would quietly run these in Node
      # (or skip them): the test files do not pin a browser themselves.
      chrome) args=(--headless --chrome) env=(WASM_BINDGEN_USE_BROWSER=1) banner="Running headless tests in Chrome" ;;
      firefox) args=(--headless --firefox) env=(WASM_BINDGEN_USE_BROWSER=1) banner="Running headless tests in Firefox" ;;
      *) echo "[test-wasm] unknown runner $runner" >&2; exit 2 ;;
    esac
    # The kernels' conformance suite; the root crate's integration tests that run in wasm: the
    # golden outputs and the bad-input suite (its proptest part is native only);
    # tests/roundtrip.rs stays native. The bindings with the tools feature, so that
    # `randomModel` is tested too.
    for crate in "kernels" ". --lib --test golden --test bad_input" "wasm --features tools"; do
      log=$(mktemp)
      echo "[test-wasm] $build / $runner / ${crate%% *}"
      # shellcheck disable=SC2086 # $crate is a path followed by cargo arguments
      if ! env "${env[@]}" RUSTFLAGS="$flags" CARGO_TARGET_DIR="$PWD/$dir" \
          wasm-pack --log-level warn test --mode no-install "${args[@]}" $crate >"$log" 2>&1; then
        cat "$log"; rm -f "$log"; exit 1
      fi
      grep -E '^test result|^Running headless' "$log" | sed 's/^/[test-wasm]   /'
      # Prove where the tests ran and that some did.
      if [ -n "$banner" ] && ! grep -q "$banner" "$log"; then
        echo "[test-wasm] expected '$banner' in the output: the tests did not run in the browser" >&2
        cat "$log"; rm -f "$log"; exit 1
      fi
      if ! grep -qE '^test result: ok\. [1-9][0-9]* passed' "$log"; then
        echo "[test-wasm] no test passed" >&2; cat "$log"; rm -f "$log"; exit 1
      fi
      rm -f "$log"
    done
  done
done
