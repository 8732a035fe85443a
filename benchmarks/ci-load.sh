#!/usr/bin/env bash
# The CI load gate: a short run of the load harness (64 callers, GET 100 B). Raw StackExchange.Redis and
# RedisPoolKit stay connected, are warmed up once each, then measured in 15 ABBA-ordered pairs of 2 s windows
# (raw, pool, pool, raw, ...). For every pair it prints the pool's extra bytes allocated per command, its CPU time
# per command over raw's and its ops/s over raw's, and fails when a median breaks a limit in benchmarks/gate.txt.
# The costs per command are what it gates on: a neighbour stealing cores moves throughput, not them; ops/s only
# has a floor for a collapse. Starts and stops its own redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

project=benchmarks/RedisPoolKit.LoadTests/RedisPoolKit.LoadTests.csproj

dotnet build "$project" -c Release --nologo -v quiet
timeout 600 dotnet "benchmarks/RedisPoolKit.LoadTests/bin/Release/net10.0/RedisPoolKit.LoadTests.dll" \
  --quick --gate benchmarks/gate.txt "$@"
