#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests (idempotent).
# Installs PostgreSQL with apt-get when it is missing, keeps its data under
# $EOWATCH_PG_DIR (default: /tmp/eowatch-pg), listens on $EOWATCH_PG_PORT
# (default 55432) and prints the line to eval:
#   eval "$(scripts/start_postgres.sh)"   # sets EOWATCH_TEST_POSTGRES_URL
# Local connections are trusted: this server is for tests only.
set -euo pipefail
PORT="${EOWATCH_PG_PORT:-55432}"
DATA="${EOWATCH_PG_DIR:-/tmp/eowatch-pg}"
DB="${EOWATCH_PG_DB:-eowatch_test}"
ROLE=eowatch

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "PostgreSQL is not installed and apt-get is not available; install PostgreSQL 13+" >&2
    exit 1
  fi
  echo "installing PostgreSQL..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(pg_bin)"

# PostgreSQL refuses to run as root: use the postgres account then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DATA" postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
chmod 700 "$DATA"
if [ ! -f "$DATA/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$DATA" -U "$ROLE" -A trust -E UTF8 --no-instructions >&2
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off" start >&2
fi
if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$DB" >&2
fi
echo "export EOWATCH_TEST_POSTGRES_URL=postgresql+psycopg://$ROLE@127.0.0.1:$PORT/$DB"
