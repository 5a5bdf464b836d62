#!/bin/sh
# Entrypoint of the eowatch image: `docker run IMAGE serve` runs `eowatch serve`, while a
# command found on PATH runs as given (`eowatch detect ...` from a CWL runner, `dask worker`,
# `python`, `sh`), so the one image serves every role without overriding the entrypoint.
set -e
if [ "$#" -eq 0 ]; then
    exec eowatch --help
fi
case "$1" in
    -*) exec eowatch "$@" ;;
esac
if command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
exec eowatch "$@"
