#!/usr/bin/env bash
# The fuzz step of CI (`.ci/run` calls it after the tests): the libFuzzer
# targets built with cargo-fuzz on the machine's one toolchain, each run
# for a bounded time from its committed corpus, then the negative control,
# which must crash. Any crash, timeout or out-of-memory of a real target
# fails the step, its input kept under `target/ci-artifacts/fuzz/`.
#
#   fuzz/ci.sh                          # 45 s a target
#   SYNCSPEC_FUZZ_SECONDS=600 fuzz/ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${SYNCSPEC_FUZZ_SECONDS:-45}"
cargo_fuzz_version=0.13.2
artifacts=target/ci-artifacts/fuzz
mkdir -p "$artifacts"

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]; then
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

# No sanitizer: every crate of ours forbids `unsafe`, what the properties
# look for (panics, allocation out of proportion, a harmed bystander) needs
# none, and without one every flag cargo-fuzz passes is a stable one (the
# sanitizers take `-Zsanitizer`, which stable takes only with
# RUSTC_BOOTSTRAP=1; AddressSanitizer works that way, five times slower).
run() { cargo fuzz run --sanitizer none "$@"; }

start=$SECONDS
cargo fuzz build --sanitizer none
echo "fuzz: built the targets in $((SECONDS - start)) s"

# What libFuzzer adds to a corpus goes to a scratch directory (the first
# one it is given), never into the committed one.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for target in frames values core; do
    mkdir -p "$work/$target"
    # `values` keeps its corpus's longest files (arrays past Convex's
    # limit, 16 KiB), so it takes libFuzzer's own maximum, the longest file.
    max_len=()
    [ "$target" = values ] || max_len=(-max_len=8192)
    echo "fuzz: $target for $seconds s"
    status=0
    run "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${max_len[@]}" \
        -artifact_prefix="$artifacts/$target-" -print_final_stats=1 >"$work/$target.log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
        "$work/$target.log" || true
    if [ "$status" -ne 0 ]; then
        grep -A 12 -E 'panicked|ERROR' "$work/$target.log" >&2 || tail -n 40 "$work/$target.log" >&2
        echo "fuzz: $target failed; its input is in $artifacts/" >&2
        exit 1
    fi
done

# The negative control: `planted` (fuzz/src/planted.rs) copies a Mutation's
# path into 32 bytes; started from the corpus's Mutation frames, libFuzzer
# must find a longer path within the bound (seconds, as measured), or this
# step cannot be trusted to find anything.
mkdir -p "$work/planted" "$work/planted-seeds"
cp fuzz/corpus/frames/mutation* "$work/planted-seeds/"
start=$SECONDS
if run planted "$work/planted" "$work/planted-seeds" -- \
    -max_total_time=180 -timeout=10 -artifact_prefix="$work/planted-" >"$work/planted.log" 2>&1; then
    echo "fuzz: the negative control found no crash in 180 s; the fuzz step cannot be trusted" >&2
    tail -n 20 "$work/planted.log" >&2
    exit 1
fi
if ! grep -q 'out of range for slice of length 32' "$work/planted.log"; then
    echo "fuzz: the negative control crashed, but not on the planted bug:" >&2
    grep -A 5 -E 'panicked|ERROR' "$work/planted.log" >&2 || tail -n 40 "$work/planted.log" >&2
    exit 1
fi
echo "fuzz: the negative control's planted bug found in $((SECONDS - start)) s, as it must be"
