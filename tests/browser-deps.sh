#!/bin/sh
# Debian's chromium and a CJK font for the browser tests (tests/browser.py), installed once:
# nothing happens when both are there. Playwright drives this chromium (`playwright install`
# cannot download its own builds here). Needs root (as CI and the sessions run) or sudo.
set -eu
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "wenquanyi micro hei"; then
    exit 0
fi
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei fontconfig
