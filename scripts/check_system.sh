#!/bin/sh
# Check what `make install` needs from the system before pip runs: Python 3.11 or newer, and the
# Debian packages that Manim's pycairo and ManimPango compile against.
set -eu
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "videoq needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    echo "Set PYTHON=/path/to/python3.11 and run make again." >&2
    exit 1
fi

missing=""
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists cairo || missing="$missing libcairo2-dev"
    pkg-config --exists pangocairo || missing="$missing libpango1.0-dev"
fi
if [ -n "$missing" ]; then
    echo "Manim needs these Debian packages, which are missing:$missing" >&2
    echo "Install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
