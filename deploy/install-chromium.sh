#!/usr/bin/env bash
# Install Debian's headless-capable Chromium (and a font, so page text is readable) for
# deploy/ui_screenshot.py and tests/test_prefect_ui.py.
#
# Idempotent: does nothing and exits 0 when /usr/bin/chromium already exists.
# Needs root (apt-get); exits 1 with one clear line otherwise.
#
#   sudo deploy/install-chromium.sh
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGES=(chromium fonts-dejavu-core)

if [[ -x "$CHROMIUM" ]]; then
    echo "install-chromium: $CHROMIUM already installed ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "install-chromium: $CHROMIUM is missing and installing it needs root: run 'sudo $0'" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: apt-get not found: this script installs Debian's chromium package only" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${PACKAGES[@]}"

if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-chromium: installed $("$CHROMIUM" --version)"
