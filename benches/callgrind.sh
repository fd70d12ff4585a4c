#!/usr/bin/env bash
# Instruction counts of `examples/cost_probe.rs` under callgrind (BENCHMARKS.md, "Zero cost when
# off"): tracing compiled out, then each tracing configuration given, on one workload.
#
#   benches/callgrind.sh steady-256 off sampled-out recording recording+buffer
#   benches/callgrind.sh kv-pressure-async off recording     # the same replay under async scheduling
#
# Prints one line per configuration: instructions counted inside `measured` (the setup is not
# counted) and the ratio to the compiled-out build; then what the probe did (for the replays:
# steps, scheduled request-steps and tokens, the units of "Async scheduling" in BENCHMARKS.md).
# Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=${1:?usage: benches/callgrind.sh <workload> [tracing...]}
shift
# Cargo's build directory: `CARGO_TARGET_DIR` when set (a second worktree, say), else `target`.
target=${CARGO_TARGET_DIR:-target}
out=$target/callgrind
mkdir -p "$out"

# Two builds of the same example; cargo keeps both feature sets' artefacts, so switching back
# and forth only re-links. `-p journey-spec`: without it the workspace's default members are
# built together, and the CLI's dependency on the library switches `tracing` back on.
cargo build --quiet -p journey-spec --release --example cost_probe --no-default-features
cp "$target/release/examples/cost_probe" "$out/cost_probe-compiled-out"
cargo build --quiet -p journey-spec --release --example cost_probe
cp "$target/release/examples/cost_probe" "$out/cost_probe-compiled-in"

count() { # binary tracing -> instructions
    local file="$out/$workload.${1#cost_probe-}.$2.callgrind"
    valgrind --tool=callgrind --toggle-collect='cost_probe::measured*' --callgrind-out-file="$file" \
        "$out/$1" "$workload" "$2" >"$file.out" 2>"$file.log"
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

base=$(count cost_probe-compiled-out off)
# The baseline must really be without tracing (the probe says which build it is).
if ! grep -q "tracing compiled out" "$out/$workload.compiled-out.off.callgrind.out"; then
    echo "the compiled-out build has tracing compiled in" >&2
    exit 1
fi
printf '%-32s %15s %8s\n' configuration instructions ratio
printf '%-32s %15s %8s\n' "compiled out" "$base" "1.0000"
for t in "$@"; do
    n=$(count cost_probe-compiled-in "$t")
    printf '%-32s %15s %8s\n' "compiled in, $t" "$n" "$(awk -v n="$n" -v b="$base" 'BEGIN { printf "%.4f", n / b }')"
done
cat "$out/$workload.compiled-out.off.callgrind.out"
