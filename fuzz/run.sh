#!/usr/bin/env bash
# Runs the stepbox fuzz targets, one after the other, each for a while.
#
#   fuzz/run.sh                      # every target, 60 s each
#   fuzz/run.sh 600                  # every target, 10 minutes each
#   fuzz/run.sh 300 manifest_policy  # one target
#   FUZZ_BUILD_ONLY=1 fuzz/run.sh    # build the targets, run nothing
#
# New inputs go to fuzz/corpus/<target>/ (kept in git, after
# `cargo fuzz cmin <target> -O -a -s none --codegen-units 16 fuzz/corpus/<target>`),
# crashes to fuzz/artifacts/<target>/ (not kept: each one becomes a unit
# test in the host crate). One fuzzing process at a time (libFuzzer's
# default; no -jobs/-workers): the fuzzers share the machine with builds.
#
# cargo-fuzz needs nightly rustc flags; on a stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks them. The build flags below must stay the same
# for `build`, `run` and `cmin`, or cargo rebuilds every dependency.
set -euo pipefail

cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(manifest_policy plan_diff mask)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# Release with debug assertions; no sanitizer (the host is safe Rust: the
# fuzzers look for panics, overflows, hangs and memory blowups, and ASan
# would double the build of wasmtime for nothing); 16 codegen units, or one
# codegen unit makes the instrumented wasmtime/cranelift build take ages.
flags=(-O -a -s none --codegen-units 16)

cargo fuzz build "${flags[@]}"
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
    exit 0
fi

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${secs}s"
    cargo fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1
done
