#!/usr/bin/env bash
# RedisPoolKit's one entry point. Usage: ./build.sh <test|replay|pack|bench> [args...]
#   test    install redis-server, redis-cli and redis-sentinel when missing, then run every test (unit + real-Redis integration)
#   replay  run the max-clients incident replay (naive vs RedisPoolKit); extra args go to the demo
#   pack    produce the NuGet packages and the redispool tool package in artifacts/packages
#   bench   run the short load comparison against raw StackExchange.Redis, FreeRedis and CSRedisCore
set -euo pipefail
cd "$(dirname "$0")"

# The tool named by $1 is usable: the binary in the environment variable $2, or one on PATH.
have_tool() {
  local explicit="${!2:-}"
  [[ -n "$explicit" && -x "$explicit" ]] || command -v "$1" >/dev/null 2>&1
}

ensure_redis() {
  # Standalone tests need redis-server; the cluster tests also redis-cli (redis-tools), the Sentinel tests redis-sentinel.
  local missing=()
  have_tool redis-server REDIS_SERVER_PATH || missing+=(redis-server)
  have_tool redis-cli REDIS_CLI_PATH || missing+=(redis-tools)
  have_tool redis-sentinel REDIS_SENTINEL_PATH || missing+=(redis-sentinel)
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""
    if [[ "$(id -u)" != "0" ]]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "${missing[*]} missing and this user cannot install them (no sudo)." >&2
        echo "Install them as root: apt-get install -y redis-server redis-tools redis-sentinel, or set REDIS_SERVER_PATH, REDIS_CLI_PATH and REDIS_SENTINEL_PATH." >&2
        exit 1
      fi
    fi
    echo "Installing ${missing[*]} from the OS packages..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools redis-sentinel >/dev/null
    # The tests start their own servers and sentinels; the distribution's services are not needed.
    for service in redis-server redis-sentinel; do
      ($sudo systemctl disable --now "$service" >/dev/null 2>&1 || $sudo service "$service" stop >/dev/null 2>&1 || true)
    done
    have_tool redis-server REDIS_SERVER_PATH && have_tool redis-cli REDIS_CLI_PATH && have_tool redis-sentinel REDIS_SENTINEL_PATH && return 0
  fi
  if [[ "${missing[*]}" == "redis-server redis-tools redis-sentinel" ]] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "redis-server not found; standalone tests will use Testcontainers.Redis on the local Docker engine."
    echo "The Redis Cluster and Sentinel tests need local binaries and will fail: install redis-server, redis-tools and redis-sentinel." >&2
    return 0
  fi
  echo "Missing: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install redis-server redis-tools redis-sentinel; macOS: brew install redis)," >&2
  echo "or point REDIS_SERVER_PATH, REDIS_CLI_PATH and REDIS_SENTINEL_PATH at the binaries." >&2
  exit 1
}

cmd="${1:-}"
shift || true
# `./build.sh replay -- --quick` (the `dotnet run` habit) means the same as `./build.sh replay --quick`.
if [[ "${1:-}" == "--" ]]; then
  shift
fi
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
