#!/usr/bin/env bash
# Builds every fuzz target once and runs each for N seconds (default 30; first argument
# overrides) from its seed corpus, failing on any crash, leak, timeout or out-of-memory.
# Installs cargo-fuzz if missing. Runs on stable Rust: RUSTC_BOOTSTRAP=1 unlocks the nightly
# flags cargo-fuzz passes (sanitizer, coverage instrumentation).
#
#   bash fuzz/smoke.sh        # 30 s per target
#   bash fuzz/smoke.sh 300    # 5 min per target
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "=== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=$(cargo fuzz list)
echo "=== building: $(echo $targets)"
cargo fuzz build

# Seeds are read from the committed corpus; new inputs go to a scratch directory so a smoke
# run never changes the repository.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $targets; do
    echo "=== $target: ${secs}s"
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if cargo fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|Done )' "$log" || true
    else
        failed+=("$target")
        tail -n 60 "$log"
        echo "=== $target FAILED (reproducer under fuzz/artifacts/$target/)"
    fi
done

if ((${#failed[@]})); then
    echo "=== fuzz smoke failed: ${failed[*]}"
    exit 1
fi
echo "=== fuzz smoke passed: every target ran ${secs}s without a finding"
