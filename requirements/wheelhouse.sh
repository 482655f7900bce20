#!/usr/bin/env bash
# Every wheel the installer needs, in one folder, for a Pi with no internet:
#
#   bash requirements/wheelhouse.sh [DIR]            # default DIR: build/wheelhouse
#
# then carry this checkout and DIR to the Pi and run
#
#   sudo bash systemd/install.sh --wheelhouse DIR [--display] [--history]
#
# Wheels are fetched for Raspberry Pi OS bookworm (CPython 3.11, glibc 2.36), binary
# wheels only, each checked against the hashes in requirements/<lock>.txt:
#   STATION_PLATFORMS (default "aarch64 armv7l": 64- and 32-bit Raspberry Pi OS) get
#     requirements/station.txt and build.txt;
#   DISPLAY_PLATFORMS (default "aarch64": PyPI has no 32-bit ARM wheels of cffi and
#     argon2-cffi-bindings, which the display's staff logins use; "x86_64" for a display
#     on a PC) get display.txt and build.txt;
#   HISTORY_PLATFORMS (default: those of the display, the small server both run on) get
#     history.txt and build.txt (psycopg-binary, like the display's argon2, has no 32-bit
#     ARM wheels).
# Set any of them to "" to skip it. A platform that misses a wheel is named with the first
# package missing, the other platforms are still fetched, and the script exits 1.
# Needs PyPI; any Python 3 with pip ($PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build/wheelhouse}"
read -r -a station_platforms <<<"${STATION_PLATFORMS-aarch64 armv7l}"
read -r -a display_platforms <<<"${DISPLAY_PLATFORMS-aarch64}"
read -r -a history_platforms <<<"${HISTORY_PLATFORMS-${DISPLAY_PLATFORMS-aarch64}}"
PYTHON="${PYTHON:-python3}"

# No pip configuration of this machine (extra indexes, local wheels, constraints): PyPI only.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX 2>/dev/null || true

mkdir -p "$dir"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
missing=()
fetch() {  # fetch PLATFORM LOCK...
    local platform="$1" glibc lock reqs=()
    shift
    for lock in "$@"; do
        [ -f "requirements/$lock.txt" ] || { echo "wheelhouse.sh: no requirements/$lock.txt" >&2; exit 2; }
        reqs+=(-r "requirements/$lock.txt")
    done
    # pip takes platform tags literally: bookworm's glibc 2.36 runs every manylinux wheel
    # from 2.17 (manylinux2014) up, and "linux_<arch>" wheels built on a Pi.
    local tags=(--platform "linux_$platform" --platform "manylinux2014_$platform")
    for glibc in $(seq 17 36); do tags+=(--platform "manylinux_2_${glibc}_$platform"); done
    if "$PYTHON" -m pip download --quiet --dest "$dir" --no-deps --require-hashes \
            --only-binary=:all: --implementation cp --python-version 3.11 \
            --abi cp311 --abi abi3 --abi none "${tags[@]}" \
            --index-url https://pypi.org/simple "${reqs[@]}" 2>"$log"; then
        echo "ok: $* for $platform"
    else
        echo "MISSING: $* for $platform: $(grep -m1 ERROR "$log" || tail -n1 "$log")"
        missing+=("$platform")
    fi
}
# One pip run per platform, with every lock that platform gets (build.txt always).
for platform in $(printf '%s\n' "${station_platforms[@]}" "${display_platforms[@]}" \
        "${history_platforms[@]}" | awk 'NF && !seen[$0]++'); do
    locks=(build)
    [[ " ${station_platforms[*]} " == *" $platform "* ]] && locks+=(station)
    [[ " ${display_platforms[*]} " == *" $platform "* ]] && locks+=(display)
    [[ " ${history_platforms[*]} " == *" $platform "* ]] && locks+=(history)
    fetch "$platform" "${locks[@]}"
done

if compgen -G "$dir/*.whl" >/dev/null; then
    (cd "$dir" && sha256sum ./*.whl >SHA256SUMS)
    echo "$(ls "$dir"/*.whl | wc -l) wheels in $dir ($(du -sh "$dir" | cut -f1))"
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "no complete set of wheels on PyPI for: ${missing[*]}" >&2
    exit 1
fi
