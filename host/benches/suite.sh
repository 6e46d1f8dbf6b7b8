#!/usr/bin/env bash
# The whole benchmark suite, at one scale or several (to see how each cost grows):
#
#   bash host/benches/suite.sh                  # 1,000,000 readers
#   bash host/benches/suite.sh 100000 1000000   # both scales, one after the other
#
# Each bench prints its figures as Markdown rows, next to its baseline from the same run; the
# whole output is also kept in target/bench-suite-<scale>.md. Every bench makes its own SQLite
# file; to run one on PostgreSQL, give it an empty database (see BENCHMARKS.md).
#
# BENCH_PROFILE picks the cargo profile (default `bench`). CI's smoke run uses `dev`, which
# reuses the test build instead of building everything again optimised: its figures mean
# nothing, it only proves every bench still runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
profile=${BENCH_PROFILE:-bench}
cargo bench -p masthead --profile "$profile" --no-run

scales=("$@")
[ ${#scales[@]} -gt 0 ] || scales=(1000000)
for n in "${scales[@]}"; do
  out="target/bench-suite-$n.md"
  {
    echo "# Benchmark suite, $n readers ($(date -u +%F), $(nproc) cores)"
    for bench in import registry plugins clubs http writes audiences; do
      echo
      echo "## $bench"
      echo
      BENCH_SUBSCRIBERS=$n BENCH_READERS=$n cargo bench -q -p masthead --profile "$profile" --bench "$bench" 2>&1 \
        | grep -v '^\(Finished\|Running\|Compiling\)'
    done
  } | tee "$out"
done
