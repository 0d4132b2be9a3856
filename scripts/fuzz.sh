#!/usr/bin/env bash
# Fuzzes the parsers that take user text, each target for FUZZ_SECONDS
# (default 600), from the committed seeds in fuzz/corpus/TARGET. New inputs
# go to a scratch folder, so the committed corpus stays the seeds; a crash
# stops the script and leaves its input in fuzz/artifacts/TARGET/.
# Not part of CI: it needs cargo-fuzz (installed here when missing) and
# builds every target with coverage instrumentation.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-600}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# libFuzzer's instrumentation flags are nightly-only; the stable toolchain
# accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wausage-target}/fuzz"
targets="${*:-saved_query params sizes customer_keys sql}"
for target in $targets; do
  scratch="$(mktemp -d)"
  echo "== $target: ${seconds}s"
  # FUZZ_DEV=1 builds unoptimised: a quicker build, slower runs.
  cargo fuzz run ${FUZZ_DEV:+--dev} --sanitizer none "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 12
  rm -rf "$scratch"
done
