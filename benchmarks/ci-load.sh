#!/usr/bin/env bash
# The CI load gate: a short run of the load harness (64 callers, GET 100 B). Raw StackExchange.Redis and
# RedisPoolKit stay connected, are warmed up once each, then measured in 15 ABBA-ordered pairs of 2 s windows
# (raw, pool, pool, raw, ...). Prints every pair's RedisPoolKit/raw ops/s ratio and fails when their median
# is below benchmarks/floor.txt: the median, so one window a busy neighbour lands on cannot decide the gate.
# Raise the floor as the code earns it. Starts and stops its own redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

floor="$(tr -d '[:space:]' < benchmarks/floor.txt)"
project=benchmarks/RedisPoolKit.LoadTests/RedisPoolKit.LoadTests.csproj

dotnet build "$project" -c Release --nologo -v quiet
timeout 600 dotnet "benchmarks/RedisPoolKit.LoadTests/bin/Release/net10.0/RedisPoolKit.LoadTests.dll" \
  --quick --floor "$floor" "$@"
