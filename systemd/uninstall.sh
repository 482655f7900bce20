#!/usr/bin/env bash
# Remove what systemd/install.sh installed.
#
#   sudo bash systemd/uninstall.sh            # units, code and venvs; keeps config and state
#   sudo bash systemd/uninstall.sh --purge    # also /etc/gym-monitor, /var/lib/gym-monitor, the user
#                                             # and the history service's SQLite database
#   sudo bash systemd/uninstall.sh --broker   # also the broker's gym.conf and ACL (Mosquitto stays);
#                                             # with --purge its CA, certificates and users too
#   bash systemd/uninstall.sh --dry-run       # print every step, change nothing
set -euo pipefail
DRY_RUN="${DRY_RUN:-}"
purge=""; broker=""
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        --broker) broker=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
run() { echo "+ $*"; [ -n "$DRY_RUN" ] || "$@"; }
if [ -z "$DRY_RUN" ] && [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root (sudo), or with --dry-run to see the steps" >&2
    exit 1
fi
for unit in gym-monitor.service gym-display.service gym-history.service gym-kiosk.service; do
    if [ -n "$DRY_RUN" ] || [ -e "/etc/systemd/system/$unit" ]; then
        run systemctl disable --now "$unit" || true
        run rm -f "/etc/systemd/system/$unit"
    fi
done
run systemctl daemon-reload
run rm -rf /opt/gym-monitor
if [ -n "$purge" ]; then
    run rm -rf /etc/gym-monitor /var/lib/gym-monitor
    if [ -n "$DRY_RUN" ] || id gym-monitor >/dev/null 2>&1; then
        run userdel gym-monitor
    fi
    # The history service's state directory (DynamicUser=: the data is under private/, the
    # name a symlink to it). A PostgreSQL database ([history] database) is left to its server.
    run rm -rf /var/lib/gym-history /var/lib/private/gym-history
else
    echo "kept /etc/gym-monitor (config) and /var/lib/gym-monitor (outbox, calibration);" \
         "--purge removes them"
    if [ -n "$DRY_RUN" ] || [ -e /var/lib/gym-history ] || [ -e /var/lib/private/gym-history ]; then
        echo "kept the history database (/var/lib/gym-history); --purge removes it"
    fi
fi
if [ -n "$broker" ]; then
    run rm -f /etc/mosquitto/conf.d/gym.conf /etc/mosquitto/gym.acl
    if [ -n "$purge" ]; then
        run rm -rf /etc/mosquitto/gym.passwd /etc/mosquitto/gym-users /etc/mosquitto/ca \
            /etc/mosquitto/certs/gym-ca.crt /etc/mosquitto/certs/broker.crt /etc/mosquitto/certs/broker.key
    else
        echo "kept the broker's CA, certificates and users (/etc/mosquitto); --purge removes them"
    fi
    run systemctl restart mosquitto.service || true
fi
