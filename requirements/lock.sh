#!/usr/bin/env bash
# Pin every Python package a Pi installs, each with its hashes, from pyproject.toml:
#
#   bash requirements/lock.sh              # after changing a dependency in pyproject.toml
#   bash requirements/lock.sh --upgrade    # move every pin to the newest version allowed
#
#   requirements/station.txt   the station: [project] dependencies
#   requirements/display.txt   the wall display: the same plus the "display" extra
#   requirements/history.txt   the history service: the same plus the "history" extra
#   requirements/build.txt     setuptools and wheel that build the project (from build.in)
#
# numpy is left out of the station, display and history locks on purpose: the Pi takes it from
# Debian (python3-numpy), because PyPI has no numpy wheels for 32-bit Raspberry Pi OS
# (armv7l) and bookworm's 1.24 meets numpy>=1.24. README.md beside this file says more.
#
# Needs Python 3.11 (what bookworm runs; $PYTHON picks another binary) and PyPI.
# pip-tools runs in a throwaway venv that sees only PyPI, as a Pi would.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
PIP_TOOLS="pip-tools==7.4.1"
upgrade=()
for arg in "$@"; do
    case "$arg" in
        --upgrade) upgrade=(--upgrade) ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "lock.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "lock.sh: $PYTHON is not Python 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# No pip configuration of this machine (extra indexes, local wheels, constraints): PyPI only.
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX 2>/dev/null || true
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "$PIP_TOOLS"

export CUSTOM_COMPILE_COMMAND="bash requirements/lock.sh"
compile() {
    # (Building the project's metadata warns about things only newer setuptools cares
    # about; the log is shown only when something fails.)
    "$tmp/venv/bin/pip-compile" --quiet --generate-hashes --strip-extras --no-emit-index-url \
        --no-emit-trusted-host --no-emit-find-links --index-url https://pypi.org/simple \
        "${upgrade[@]}" "$@" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
    local out="${*: -2:1}"
    # The project itself (an extra that pulls in another, history -> display, names it):
    # installed from the release after the lock, never from the lock (a path, no hash).
    awk '/^# WARNING: pip install will require the following package to be hashed/ { next }
         /^# Consider using a hashable URL/ { next }
         /^gym-tremor-monitor @ / { own = 1; next }
         own && /^    / { next }
         { own = 0; print }' "$out" >"$tmp/lock" && cat "$tmp/lock" >"$out"
    if grep -q '^# numpy$' "$out"; then
        sed -i 's|^# numpy$|# numpy  (Debian'"'"'s python3-numpy: requirements/README.md)|' "$out"
    fi
}
compile --allow-unsafe --output-file requirements/build.txt requirements/build.in
# One setuptools in the venv: colorzero (gpiozero's) wants it at run time, the build the
# version build.in names. Naming numpy "unsafe" keeps it out (and setuptools in).
compile --unsafe-package numpy --constraint requirements/build.in \
    --output-file requirements/station.txt pyproject.toml
compile --unsafe-package numpy --constraint requirements/build.in --extra display \
    --output-file requirements/display.txt pyproject.toml
compile --unsafe-package numpy --constraint requirements/build.in --extra history \
    --output-file requirements/history.txt pyproject.toml
echo "locked: $(ls requirements/*.txt | tr '\n' ' ')"
echo "next: bash requirements/wheelhouse.sh (checks every pin has a wheel for the Pi's platforms)"
