#!/usr/bin/env bash
# Summarises the last `cargo bench` run (target/criterion/*/new): one line per benchmark with
# criterion's median and median absolute deviation per iteration, the range of the 100 sample
# means, and, for benchmarks with a throughput in elements, the median per element.
#
#   benches/table.sh [id-prefix]      e.g. benches/table.sh emitter/
#
# Times are nanoseconds. Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."

printf '%-40s %12s %10s %25s %14s\n' benchmark median_ns mad_ns "sample_range_ns" per_element_ns
find "${CARGO_TARGET_DIR:-target}/criterion" -path '*/new/benchmark.json' | sort | while read -r b; do
    dir=$(dirname "$b")
    id=$(jq -r .full_id "$b")
    [[ "$id" == "${1:-}"* ]] || continue
    elements=$(jq -r '.throughput.Elements // 1' "$b")
    jq -r --arg id "$id" --argjson n "$elements" --slurpfile s "$dir/sample.json" '
        ([$s[0].times, $s[0].iters] | transpose | map(.[0] / .[1])) as $means
        | [ $id, .median.point_estimate, .median_abs_dev.point_estimate,
            "[\($means | min | . * 10 | round / 10), \($means | max | . * 10 | round / 10)]",
            (if $n > 1 then .median.point_estimate / $n else "" end) ]
        | "\(.[0])\t\(.[1])\t\(.[2])\t\(.[3])\t\(.[4])"' "$dir/estimates.json" |
        awk -F'\t' '{ pe = ($5 == "") ? "" : sprintf("%.1f", $5);
                      printf "%-40s %12.1f %10.1f %25s %14s\n", $1, $2, $3, $4, pe }'
done
