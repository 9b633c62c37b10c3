#!/usr/bin/env bash
# Builds the WebAssembly module twice (SIMD128 and scalar) and assembles pkg/ as the
# npm package `dkp-lstm`: both builds, the loader that picks one, the model worker and
# its client ('dkp-lstm/worker'), types and README.
# Fails when a .wasm exceeds the size budget.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
wasm-opt --version 2>/dev/null | grep -q "version 132" || { echo "[build-wasm] wasm-opt 132 missing: run scripts/setup.sh" >&2; exit 1; }

# The budget of the two runtime modules (what an app ships), uncompressed; the tools
# modules (`randomModel` and the file writer, `benchKernel` and the planner; for tests,
# demos and benchmarks, in both builds so that `benchKernel` times each) have none.
# docs/benchmarks.md, "Where the WebAssembly bytes go", has the breakdown.
BUDGET_KB=200
MAX_WASM_BYTES=$((BUDGET_KB * 1024))

# Assembled aside and moved into place at the end, so that pkg/ is never half-built
# for whoever uses it meanwhile (the demo page, the tests).
mkdir -p target-wasm
stage=$(mktemp -d target-wasm/pkg-staging.XXXXXX)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT

build() { # variant target-dir rustflags [cargo arguments]
  echo "[build-wasm] $1 build (CARGO_TARGET_DIR=$2${3:+, RUSTFLAGS=$3}${4:+, $4})"
  # shellcheck disable=SC2086 # $4: cargo arguments, split on purpose
  RUSTFLAGS="$3" CARGO_TARGET_DIR="$PWD/$2" \
    wasm-pack --log-level warn build --mode no-install wasm --target web --release \
      --out-dir "$PWD/$stage/$1" --out-name dkp_lstm_wasm --no-pack ${4:-}
  # wasm-pack's own package.json/README/.gitignore stay out: pkg/ is one package.
  rm -f "$stage/$1/.gitignore" "$stage/$1/package.json" "$stage/$1/README.md"
}

build simd target-simd "-C target-feature=+simd128"
build scalar target-wasm ""
build tools target-wasm "" "--features tools"
build tools-simd target-simd "-C target-feature=+simd128" "--features tools"
cp npm/index.js npm/index.d.ts npm/read-url.js npm/worker-client.js npm/worker.d.ts npm/model-worker.js \
  npm/README.md npm/package.json "$stage/"

over=0
for variant in simd scalar; do
  f=$stage/$variant/dkp_lstm_wasm_bg.wasm
  size=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  printf '[build-wasm] pkg/%s/dkp_lstm_wasm_bg.wasm: %d bytes (%d KB, gzip %d KB)\n' "$variant" "$size" $((size / 1024)) $((gz / 1024))
  if [ "$size" -gt "$MAX_WASM_BYTES" ]; then
    echo "[build-wasm] the $variant module exceeds the budget of $MAX_WASM_BYTES bytes" >&2
    over=1
  fi
done
for variant in tools tools-simd; do
  printf '[build-wasm] pkg/%s/dkp_lstm_wasm_bg.wasm: %d bytes\n' "$variant" "$(stat -c %s "$stage/$variant/dkp_lstm_wasm_bg.wasm")"
done
[ "$over" = 0 ] || exit 1
rm -rf pkg
mv "$stage" pkg
echo "[build-wasm] pkg/ ready: the npm package dkp-lstm"
