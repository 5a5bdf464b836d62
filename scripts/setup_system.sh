#!/usr/bin/env bash
# Debian packages eowatch and its tests use beyond PyPI:
# * proj-data: PROJ's EGM96 geoid grid (egm96_15.gtx), which turns DEM heights above the geoid
#   into the ellipsoidal heights Sentinel-1 terrain geocoding needs (eowatch.io.geoid);
# * otb-bin: Orfeo ToolBox, the independent reference the S1 calibration / orthorectification
#   tests and benchmarks compare against (tests/io/test_s1_vs_otb.py skip without it).
# Installs what is missing with apt-get as root or through password-less sudo; otherwise says
# what to install and goes on (the geoid can also be named with EOWATCH_GEOID).
set -euo pipefail
missing=()
[ -f /usr/share/proj/egm96_15.gtx ] || [ -f /usr/share/proj/us_nga_egm96_15.tif ] || missing+=(proj-data)
command -v otbcli_SARCalibration >/dev/null 2>&1 || missing+=(otb-bin)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_system: install ${missing[*]} (Debian/Ubuntu names) for the S1 geoid and the OTB reference" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "setup_system: run 'apt-get install ${missing[*]}' as root (S1 geoid, OTB reference)" >&2
    exit 0
  fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
