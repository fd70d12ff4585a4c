#!/usr/bin/env bash
# Peak memory of `journey check` on a big generated trace (BENCHMARKS.md, "check peak memory"):
# `journey simulate` writes REQUESTS journeys (one scheduler instance, so the instance rules see
# every journey) as OTLP JSON Lines, then `journey check` reads it with /usr/bin/time.
set -euo pipefail
requests=${REQUESTS:-200000}
# Cargo's build directory: `CARGO_TARGET_DIR` when set, else `target`.
target=${CARGO_TARGET_DIR:-target}
dir=${DIR:-$target/peak-memory}
mkdir -p "$dir"
cargo build --release --quiet --bin journey
j=$target/release/journey
[ -f "$dir/big.jsonl" ] || "$j" simulate --requests "$requests" --out "$dir/big.jsonl"
ls -l "$dir/big.jsonl"
/usr/bin/time -f "check: %M KB peak RSS, %e s" "$j" check "$dir/big.jsonl" > /dev/null
/usr/bin/time -f "check --window 100000: %M KB peak RSS, %e s" "$j" check --window 100000 "$dir/big.jsonl" > /dev/null
