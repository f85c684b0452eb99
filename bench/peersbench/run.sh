#!/usr/bin/env bash
# Runs the shared peersbench (../shared/peersbench, or $PEERSBENCH) against
# this checkout with two more Stent peers, stent-sqlite-otel and
# stent-postgres-otel: the same workloads with tracing and metrics on
# (peer_stent_otel.go), so that their cost is measured beside the peers in
# one run. Arguments and environment as run_stent.sh's:
#   bash bench/peersbench/run.sh
#   PEERS="stent-sqlite stent-sqlite-otel dbos-sqlite" WORKLOADS=seq REPS=5 bash bench/peersbench/run.sh
set -euo pipefail
project=$(cd "$(dirname "$0")/../.." && pwd)
src=${PEERSBENCH:-$project/../shared/peersbench}
[ -f "$src/run_stent.sh" ] || { echo "no peersbench at $src: set PEERSBENCH" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src"/. "$work"/
cp "$project/bench/peersbench/peer_stent_otel.go" "$work"/
bash "$work/run_stent.sh" "$project" "$@"
