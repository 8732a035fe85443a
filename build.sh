#!/usr/bin/env bash
# RedisPoolKit's one entry point. Usage: ./build.sh <test|replay|pack|bench> [args...]
#   test    install redis-server when missing, then run every test (unit + real-Redis integration)
#   replay  run the max-clients incident replay (naive vs RedisPoolKit); extra args go to the demo
#   pack    produce the NuGet packages and the redispool tool package in artifacts/packages
#   bench   run the short load comparison against raw StackExchange.Redis, FreeRedis and CSRedisCore
set -euo pipefail
cd "$(dirname "$0")"

ensure_redis() {
  if [[ -n "${REDIS_SERVER_PATH:-}" && -x "${REDIS_SERVER_PATH}" ]] || command -v redis-server >/dev/null 2>&1; then
    return 0
  fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "redis-server not found; tests will use Testcontainers.Redis on the local Docker engine."
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""
    if [[ "$(id -u)" != "0" ]]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "redis-server is missing and this user cannot install it (no sudo)." >&2
        echo "Install it as root: apt-get install -y redis-server, or set REDIS_SERVER_PATH, or start Docker." >&2
        exit 1
      fi
    fi
    echo "Installing redis-server from the OS packages..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
    # The tests start their own servers; the distribution's service is not needed.
    ($sudo systemctl disable --now redis-server >/dev/null 2>&1 || $sudo service redis-server stop >/dev/null 2>&1 || true)
    command -v redis-server >/dev/null 2>&1 && return 0
  fi
  echo "redis-server is required. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)," >&2
  echo "or point REDIS_SERVER_PATH at a redis-server binary, or start a Docker engine (Testcontainers fallback)." >&2
  exit 1
}

cmd="${1:-}"
shift || true
case "$cmd" in
  test)
    ensure_redis
    rm -rf artifacts/test-results
    dotnet test RedisPoolKit.sln -c Release --logger "trx" --results-directory artifacts/test-results "$@"
    ;;
  replay)
    ensure_redis
    dotnet run -c Release --project samples/IncidentReplay -- "$@"
    ;;
  pack)
    dotnet pack RedisPoolKit.sln -c Release -o artifacts/packages "$@"
    ;;
  bench)
    ensure_redis
    bash benchmarks/ci-load.sh "$@"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
