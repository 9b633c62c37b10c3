#!/usr/bin/env bash
# Checks that the runtime crate and its wasm bindings build with the Rust version that
# Cargo.toml's `rust-version` promises (their dev-dependencies, e.g. proptest, may need
# a newer one, so only the libraries are checked). Installs that toolchain with rustup
# (minimal profile) when it is missing; builds into target-msrv/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$msrv" ] || { echo "[msrv] no rust-version in Cargo.toml" >&2; exit 1; }
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
  echo "[msrv] installing Rust $msrv (minimal profile)"
  rustup toolchain install "$msrv" --profile minimal >/dev/null
fi
echo "[msrv] $(rustup run "$msrv" rustc --version)"
CARGO_TARGET_DIR="$PWD/target-msrv" cargo "+$msrv" check --quiet --locked -p dkp-lstm -p dkp-lstm-wasm
echo "[msrv] dkp-lstm and dkp-lstm-wasm build with Rust $msrv"
