#!/usr/bin/env bash
# The CI soak: 60 s of mixed commands and lease consumers through RedisPoolKit while a pool socket is killed every
# 3 s and the server restarts once. Fails on a leaked socket, permit or lease slot, an error of a type the pool
# does not promise, or memory/threads past fixed bounds; never on speed. Starts and stops its own redis-server.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

project=benchmarks/RedisPoolKit.LoadTests/RedisPoolKit.LoadTests.csproj
dotnet build "$project" -c Release --nologo -v quiet
timeout 300 dotnet "benchmarks/RedisPoolKit.LoadTests/bin/Release/net10.0/RedisPoolKit.LoadTests.dll" \
  --scenario soak --duration 60 "$@"
