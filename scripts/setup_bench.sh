#!/usr/bin/env bash
# Install what the full-scene benchmark compares against: Orfeo ToolBox's command-line
# applications (Debian package otb-bin, which brings otbcli_MultivariateAlterationDetector),
# then check that the MAD application loads. Needs apt-get (and root) only when OTB is missing.
set -euo pipefail
APP=otbcli_MultivariateAlterationDetector
if ! command -v "$APP" >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$APP is missing and there is no apt-get: install Orfeo ToolBox (https://www.orfeo-toolbox.org)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends otb-bin
fi
# -help exits 1 even when all is well; the application loaded when it lists its parameters.
HELP="$("$APP" -help 2>&1 || true)"
if ! grep -q -- "-in1" <<<"$HELP"; then
  echo "$APP is installed but the application does not load:" >&2
  echo "$HELP" | head -20 >&2
  exit 1
fi
grep -m1 "application, version" <<<"$HELP"
