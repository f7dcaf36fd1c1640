#!/usr/bin/env bash
# Benchmark, not a test: builds coffer in release mode, then syncs a store
# of 1,000 secrets (or $1) to the local stand-in of the platform's API and
# prints the requests sent, the wall time and coffer's CPU time, for a first
# sync and for a re-sync with nothing changed, then the re-sync's reads sent
# again by a bare client (the floor of its requests).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin coffer --example sync_bench
target/release/examples/sync_bench target/release/coffer "${1:-1000}"
