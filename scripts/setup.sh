#!/usr/bin/env bash
# Create the virtual environment and install eowatch with everything its tests need.
# Works on a fresh Debian/Ubuntu machine with Python 3.11+; needs only the package registries.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "eowatch needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# rasterio and pyogrio wheels bundle GDAL, so no system GDAL is needed.
"$VENV/bin/python" -m pip install -q -e ".[test,cloudmask,server,monitor,dask,learn]"
bash "$(dirname "$0")/setup_system.sh"  # Debian: the EGM96 geoid (proj-data), Orfeo ToolBox (tests)
bash "$(dirname "$0")/setup_web.sh"  # web app libraries from npm (web/) and chromium for tests/web
"$VENV/bin/python" -c "import eowatch, rasterio; print('eowatch', eowatch.__version__, 'GDAL', rasterio.__gdal_version__)"
