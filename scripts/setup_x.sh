#!/usr/bin/env bash
# The one GUI test that runs under a real X server needs Debian's Xvfb and the X
# libraries Qt's xcb platform plugin loads. Installed here when missing and we can
# (root with apt-get); otherwise that test says what is missing.
set -euo pipefail
PACKAGES=(xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
          libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0)
if command -v Xvfb >/dev/null 2>&1 && ldconfig -p | grep -q libxcb-icccm.so.4 \
        && ldconfig -p | grep -q libxcb-keysyms.so.1 && ldconfig -p | grep -q libxcb-cursor.so.0; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: Xvfb or Qt's xcb libraries are missing; install: ${PACKAGES[*]}" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${PACKAGES[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${PACKAGES[@]}" >/dev/null; }
