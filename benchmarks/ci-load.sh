#!/usr/bin/env bash
# The CI load gate: a short run (64 callers, GET 100 B, 3 alternating rounds of 3 s) of the load harness,
# printing the ratio table and failing when RedisPoolKit/raw StackExchange.Redis ops/s at 64 callers is
# below benchmarks/floor.txt. Raise the floor as the code earns it. Starts and stops its own redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

floor="$(tr -d '[:space:]' < benchmarks/floor.txt)"
project=benchmarks/RedisPoolKit.LoadTests/RedisPoolKit.LoadTests.csproj

dotnet build "$project" -c Release --nologo -v quiet
timeout 600 dotnet "benchmarks/RedisPoolKit.LoadTests/bin/Release/net10.0/RedisPoolKit.LoadTests.dll" \
  --quick --floor "$floor" "$@"
