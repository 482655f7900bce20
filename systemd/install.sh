#!/usr/bin/env bash
# Install a gym tremor monitor station (and/or the wall display) on Raspberry Pi OS (bookworm).
#
#   sudo bash systemd/install.sh                 # the station
#   sudo bash systemd/install.sh --display       # the wall display service
#   sudo bash systemd/install.sh --station --display
#   bash systemd/install.sh --dry-run ...        # print every step, change nothing
#
# It installs Debian's python3-venv, python3-lgpio (gpiozero's backend on a
# Pi) and i2c-tools; creates the gym-monitor user in the i2c and gpio groups;
# puts this checkout and a venv in /opt/gym-monitor; puts config/monitor.toml
# in /etc/gym-monitor unless one is there already (it never overwrites it);
# installs and enables the systemd units. Undo with systemd/uninstall.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$(pwd)"
PREFIX=/opt/gym-monitor
ETC=/etc/gym-monitor
DRY_RUN="${DRY_RUN:-}"
station=""; display=""
for arg in "$@"; do
    case "$arg" in
        --station) station=1 ;;
        --display) display=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$station$display" ] || station=1

run() { echo "+ $*"; [ -n "$DRY_RUN" ] || "$@"; }

if [ -z "$DRY_RUN" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2
    exit 1
fi

packages=(python3-venv)
[ -n "$station" ] && packages+=(python3-lgpio i2c-tools)
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends "${packages[@]}"

if [ -n "$station" ] && ! id gym-monitor >/dev/null 2>&1; then
    run useradd --system --no-create-home --home-dir /var/lib/gym-monitor --shell /usr/sbin/nologin gym-monitor
fi
if [ -n "$station" ]; then
    for group in i2c gpio; do
        getent group "$group" >/dev/null || run groupadd --system "$group"
    done
    run usermod -a -G i2c,gpio gym-monitor
fi

# The code and its venv; --system-site-packages lets gpiozero find Debian's lgpio.
run install -d -m 0755 "$PREFIX"
run install -d -m 0755 "$PREFIX/src"
# The checkout without its own venv, git history or test artifacts.
run tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./test-artifacts -cf "$PREFIX/src.tar" .
run tar -C "$PREFIX/src" -xf "$PREFIX/src.tar"
run rm -f "$PREFIX/src.tar"
run python3 -m venv --system-site-packages "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --quiet "$PREFIX/src"

run install -d -m 0750 -g "$([ -n "$station" ] && echo gym-monitor || echo root)" "$ETC"
if [ -n "$station" ]; then
    if [ -e "$ETC/monitor.toml" ]; then
        echo "keeping the existing $ETC/monitor.toml"
    else
        run install -m 0640 -g gym-monitor config/monitor.toml "$ETC/monitor.toml"
    fi
    run install -m 0644 systemd/gym-monitor.service /etc/systemd/system/gym-monitor.service
fi
if [ -n "$display" ]; then
    run install -m 0644 systemd/gym-display.service /etc/systemd/system/gym-display.service
fi
run systemctl daemon-reload

if [ -n "$station" ]; then
    if [ ! -e /dev/i2c-1 ] && [ -z "$DRY_RUN" ]; then
        echo "note: /dev/i2c-1 is missing: add dtparam=i2c_arm=on to /boot/firmware/config.txt and reboot" \
             "(hardware/boot-config.md); the station reports its sensors as faults until then"
    fi
    echo "edit $ETC/monitor.toml (station id, sensors, [mqtt]), check it with:"
    echo "  $PREFIX/venv/bin/gym-monitor check-config $ETC/monitor.toml"
    run systemctl enable --now gym-monitor.service
fi
if [ -n "$display" ]; then
    if [ ! -e "$ETC/display-mqtt.password" ] && [ -z "$DRY_RUN" ]; then
        echo "put the display user's MQTT password in $ETC/display-mqtt.password (mode 0600), then:"
        echo "  systemctl enable --now gym-display.service"
    else
        run systemctl enable --now gym-display.service
    fi
fi
echo "done: journalctl -u gym-monitor -f shows the station's log"
