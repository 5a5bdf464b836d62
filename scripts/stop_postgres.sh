#!/usr/bin/env bash
# Stop the test PostgreSQL server started by start_postgres.sh (its data stay;
# pass --purge to delete them).
set -euo pipefail
DATA="${EOWATCH_PG_DIR:-/tmp/eowatch-pg}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  else
    "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  fi
fi
if [ "${1:-}" = "--purge" ]; then rm -rf "$DATA"; fi
