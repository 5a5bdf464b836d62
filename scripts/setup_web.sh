#!/usr/bin/env bash
# Install the web application's browser libraries from npm (web/package-lock.json) and copy
# the files the pages load into src/eowatch/web/static/vendor/ (gitignored): the app needs
# no CDN and no internet at run time. Also installs Debian's chromium for the browser tests.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENDOR="$ROOT/src/eowatch/web/static/vendor"
MODULES="$ROOT/web/node_modules"

apt_install() {  # apt-get as root, or through sudo when it asks no password
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq "$@"
  else return 1; fi
}

if ! command -v npm >/dev/null; then
  if [ -f "$VENDOR/leaflet/leaflet.js" ]; then
    echo "setup_web: npm is missing but $VENDOR is already filled; keeping it (install nodejs/npm to refresh)"
    SKIP_NPM=1
  elif command -v apt-get >/dev/null && apt_install nodejs npm; then
    :
  else
    echo "setup_web: npm is needed to fetch the web libraries; install nodejs and npm (e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
fi

if [ -z "${SKIP_NPM:-}" ] && ! (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error); then
  if [ -f "$VENDOR/leaflet/leaflet.js" ]; then
    echo "setup_web: npm ci failed (registry unreachable?); keeping the libraries already in $VENDOR" >&2
    SKIP_NPM=1
  else
    echo "setup_web: npm ci failed in web/; the web application needs its libraries (check the npm registry)" >&2
    exit 1
  fi
fi
if [ -z "${SKIP_NPM:-}" ]; then
  rm -rf "$VENDOR.tmp" && mkdir -p "$VENDOR.tmp"/{leaflet,leaflet-draw,topojson-client,world-atlas}
  cp -r "$MODULES/leaflet/dist/leaflet.js" "$MODULES/leaflet/dist/leaflet.css" "$MODULES/leaflet/dist/images" \
    "$MODULES/leaflet/LICENSE" "$VENDOR.tmp/leaflet/"
  cp -r "$MODULES/leaflet-draw/dist/leaflet.draw.js" "$MODULES/leaflet-draw/dist/leaflet.draw.css" \
    "$MODULES/leaflet-draw/dist/images" "$VENDOR.tmp/leaflet-draw/"
  cp "$MODULES/topojson-client/dist/topojson-client.min.js" "$MODULES/topojson-client/LICENSE" \
    "$VENDOR.tmp/topojson-client/"
  cp "$MODULES/world-atlas/countries-50m.json" "$MODULES/world-atlas/LICENSE" "$VENDOR.tmp/world-atlas/"
  rm -rf "$VENDOR" && mv "$VENDOR.tmp" "$VENDOR"  # never leave a half-copied vendor folder
  echo "setup_web: web libraries in $VENDOR"
fi

# The browser tests (tests/web) drive Debian's chromium through Playwright (no playwright install).
# EOWATCH_NO_BROWSER=1 skips it (container builds need only the libraries).
if [ -z "${EOWATCH_NO_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && apt_install chromium; then
    echo "setup_web: installed chromium"
  else
    echo "setup_web: /usr/bin/chromium is missing and could not be installed; tests/web will be skipped" >&2
  fi
fi
