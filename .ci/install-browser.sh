#!/bin/bash
# Install Debian's Chromium, which tests/test_dashboard_browser.py drives through Playwright for
# Python at /usr/bin/chromium. Playwright's own browser download (playwright install) is never
# used. Ubuntu's chromium package only installs a snap, which does not run in CI containers.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Fresh machines have no package lists yet, so update them unless they already list chromium.
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi
# fonts-liberation gives the page's sans-serif text real glyphs in screenshots.
$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null

# Debian's launcher may also print "[: ...: unexpected operator" from its shared-memory check
# in /etc/chromium.d/dev-shm; Chromium starts all the same.
/usr/bin/chromium --version
