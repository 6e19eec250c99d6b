#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a short, bounded time (style.md §9).
#
# The machine has only the stable toolchain; cargo-fuzz needs nightly flags (-Zsanitizer, …),
# so they are unlocked with RUSTC_BOOTSTRAP=1 (dependencies.md, "Fuzzing").
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 30)
#   FUZZ_SANITIZER  address (default) or none
#   FUZZ_TARGETS    space-separated targets (default: all of `cargo fuzz list`)
#
# Inputs that grow coverage go to fuzz/corpus/<target> (git-ignored, kept between runs); the
# committed seeds in fuzz/seeds/<target> are only read. A crash, a failed assertion or a
# timeout leaves its input in fuzz/artifacts/<target> and makes this script exit non-zero.
# Each target ends with a line `fuzz.sh: <target> ok|FAILED: <N> executions in <S>s (<R> exec/s)`
# (libFuzzer's -print_final_stats), repeated together at the end for the CI log.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-30}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# Release build with debug assertions (integer overflow is a finding too). The same flags are
# passed to `run`, so it reuses this build instead of rebuilding.
build_flags=(--release --debug-assertions --sanitizer "$sanitizer")

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    for target in $targets; do
        echo "fuzz.sh: building $target (sanitizer: $sanitizer)" >&2
        cargo fuzz build "${build_flags[@]}" "$target"
    done
else
    echo "fuzz.sh: building all targets (sanitizer: $sanitizer)" >&2
    cargo fuzz build "${build_flags[@]}"
fi

failed=()
summary=()
for target in $targets; do
    corpus="fuzz/corpus/$target"
    seeds="fuzz/seeds/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [[ -d "$seeds" ]]; then
        dirs+=("$seeds")
    fi
    log="$(mktemp)"
    echo "fuzz.sh: running $target for ${seconds}s" >&2
    # The first directory receives new inputs; the seeds directory after it is only read.
    if cargo fuzz run "${build_flags[@]}" "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        2>&1 | tee "$log"; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    # Executions: libFuzzer's final stats, else (a crash ends the run before them) the last
    # `#N` progress line.
    runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n1 || true)"
    if [[ -z "$runs" ]]; then
        runs="$(grep -Eo '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)"
    fi
    rate="$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n1 || true)"
    line="fuzz.sh: $target $status: ${runs:-?} executions in ${seconds}s (${rate:-?} exec/s)"
    echo "$line" >&2
    summary+=("$line")
    rm -f "$log"
done

printf '%s\n' "${summary[@]}" >&2
if ((${#failed[@]})); then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran ${seconds}s without a crash" >&2
