#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download): install it if missing.
set -eu
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "Chromium is missing: install it with 'sudo apt-get install chromium' (Debian) and run make test again." >&2
exit 1
