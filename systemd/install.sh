#!/usr/bin/env bash
# Install the gym tremor monitor on Raspberry Pi OS (bookworm): a station, the wall
# display, the history service, the gym's broker, or several of them on one machine.
#
#   sudo bash systemd/install.sh                     # a station
#   sudo bash systemd/install.sh --display           # the wall display service
#   sudo bash systemd/install.sh --history           # the history service (the coach's pages)
#   sudo bash systemd/install.sh --broker --add-user bench-1 --add-user bench-2
#   sudo bash systemd/install.sh --ca gym-ca.crt --mqtt-password bench-1.password
#   sudo bash systemd/install.sh --wheelhouse DIR    # no internet (requirements/wheelhouse.sh)
#   bash systemd/install.sh --dry-run ...            # print every step, change nothing
#
#   --station --display --history --broker  what to install (default: --station)
#   --wheelhouse DIR     Python packages from DIR only, never the internet
#   --ca FILE            the gym's CA certificate (gym-ca.crt from the broker) -> /etc/gym-monitor
#   --mqtt-password FILE this station's broker password -> /etc/gym-monitor/mqtt-password
#   --broker-name NAME   a name or address clients use for the broker (repeatable; default:
#                        this machine's names); the broker's certificate covers each
#   --add-user NAME      a broker user for a station (repeatable); a password is made for it;
#                        the ACL's own users and levels (display, history, _athletes...) are refused
#   --root DIR           stage under DIR instead of / (tests): files and the venv only; no
#                        Debian packages, users, file owners, or services started
#
# Python packages are pinned with hashes (requirements/*.txt); numpy, lgpio and i2c-tools
# come from Debian. Each install is a release of its own in /opt/gym-monitor/releases,
# made live by one symlink swap once complete, so a failed upgrade leaves the running
# one alone; the previous release is kept. /etc/gym-monitor (config),
# /var/lib/gym-monitor (outbox, calibration) and the history database (/var/lib/gym-history)
# are never overwritten. The station is enabled only once its config passes
# `gym-monitor check-config` and has its own station id (not the example's, not one of the
# broker's service users); the display and the history service once their config loads and
# every file their unit hands them exists; an upgrade restarts what runs. Undo with
# systemd/uninstall.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$(pwd)"
DRY_RUN="${DRY_RUN:-}"
PYTHON="${PYTHON:-/usr/bin/python3}"
ROOT=""
station=""; display=""; history=""; broker=""
wheelhouse=""; ca=""; mqtt_password=""
broker_names=(); add_users=()
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "install.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --station) station=1 ;;
        --display) display=1 ;;
        --history) history=1 ;;
        --broker) broker=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --wheelhouse) need_value "$@"; wheelhouse="$(realpath -m "$2")"; shift ;;
        --ca) need_value "$@"; ca="$(realpath -m "$2")"; shift ;;
        --mqtt-password) need_value "$@"; mqtt_password="$(realpath -m "$2")"; shift ;;
        --broker-name) need_value "$@"; broker_names+=("$2"); shift ;;
        --add-user) need_value "$@"; add_users+=("$2"); shift ;;
        --root) need_value "$@"; ROOT="$(realpath -m "$2")"; shift ;;
        -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$station$display$history$broker" ] || station=1

PREFIX="$ROOT/opt/gym-monitor"
ETC="$ROOT/etc/gym-monitor"
UNITS="$ROOT/etc/systemd/system"
MOSQ="$ROOT/etc/mosquitto"
EXAMPLE_CONFIG="$SRC/config/monitor.toml"

die() { echo "install.sh: $*" >&2; exit 1; }
run() { echo "+ $*"; [ -n "$DRY_RUN" ] || "$@"; }
# Steps that change the system itself (packages, users, owners, services): not under --root.
system() { if [ -n "$ROOT" ]; then echo "- not under --root: $*"; else run "$@"; fi; }
# -o/-g for install(1), except under --root (the owners are those of the target system).
owner() { [ -n "$ROOT" ] || printf -- '-o\n%s\n-g\n%s\n' "$1" "$2"; }

if [ -z "$DRY_RUN$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo), or with --dry-run to see the steps"
fi
for f in "$wheelhouse" "$ca" "$mqtt_password"; do
    [ -z "$f" ] || [ -e "$f" ] || die "no such file or folder: $f"
done
# Names a station must not take, read from the broker's ACL: its own users (display,
# operator, integrator, homeassistant, history) and the levels under gym/ it grants rights on
# (the athletes' _athletes): as a station's user name, "pattern write gym/%u/#" would hand
# that level over.
mapfile -t acl_users < <(sed -n 's/^user[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' \
    config/mosquitto/acl)
mapfile -t acl_levels < <(grep -v '^[[:space:]]*#' config/mosquitto/acl |
    grep -oE 'gym/[A-Za-z0-9_][A-Za-z0-9_-]*/' | sed 's|^gym/||; s|/$||' | sort -u |
    grep -vxF -f <(printf '%s\n' "${acl_users[@]}"))
# Why NAME cannot be a station's id (one line), or nothing.
reserved() {
    local name="$1" u
    for u in "${acl_users[@]}"; do
        if [ "$name" = "$u" ]; then echo "the broker's $u user"; return; fi
    done
    for u in "${acl_levels[@]}"; do
        if [ "$name" = "$u" ]; then
            echo "a topic level with rights of its own in the broker's ACL (gym/$u/)"
            return
        fi
    done
}
for user in "${add_users[@]}"; do
    # The rule of [station] id (monitor/config.py): a station's user name is its id.
    [[ "$user" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]] ||
        die "--add-user $user: a station id is letters, digits, '-' and '_'" \
            "(1-64, a letter or digit first)"
    why="$(reserved "$user")"
    [ -z "$why" ] || die "--add-user $user: that name is $why, not a station"
done

# pip sees only what this script gives it: the locks, and PyPI or the wheelhouse.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX PIP_REQUIRE_HASHES 2>/dev/null || true

# ------------------------------------------------------------------ Debian packages
packages=()
[ -n "$station" ] && packages+=(python3-venv python3-numpy python3-lgpio i2c-tools)
[ -n "$display$history" ] && packages+=(python3-venv python3-numpy)
[ -n "$broker" ] && packages+=(mosquitto mosquitto-clients openssl)
read -r -a packages <<<"$(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
echo "Debian packages: ${packages[*]}"
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "all installed already"
elif [ -n "$wheelhouse" ]; then
    # Offline: only what this Pi's own package cache can give.
    system apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        die "missing Debian packages: ${missing[*]}. With no internet: on a machine that has it," \
            "'apt-get download' them for this release and architecture, then 'sudo apt install ./*.deb' here"
else
    system apt-get update -qq
    system apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ------------------------------------------------------------------ the station's user
if [ -n "$station" ]; then
    if [ -n "$ROOT" ] || [ -n "$DRY_RUN" ] || ! id gym-monitor >/dev/null 2>&1; then
        system useradd --system --no-create-home --home-dir /var/lib/gym-monitor --shell /usr/sbin/nologin gym-monitor
    fi
    for group in i2c gpio; do
        getent group "$group" >/dev/null || system groupadd --system "$group"
    done
    system usermod -a -G i2c,gpio gym-monitor
fi

# ------------------------------------------------------------------ code and venv: a new release
if [ -n "$station$display$history" ]; then
    version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
    release="releases/${version:-unknown}-$(date -u +%Y%m%dT%H%M%SZ)"
    n=1; base="$release"
    while [ -e "$PREFIX/$release" ]; do n=$((n + 1)); release="$base-$n"; done
    rel="$PREFIX/$release"
    venv="$rel/venv"
    run install -d -m 0755 "$PREFIX" "$PREFIX/releases" "$rel"
    # What a Pi needs of the checkout: the package, its build files, the locks, config,
    # units and the docs the units point at (not tests, benchmarks or anyone's venvs).
    ship=(pyproject.toml README.md monitor config systemd hardware requirements)
    for extra in LICENSE LICENSE.md; do [ -e "$extra" ] && ship+=("$extra"); done
    echo "+ tar -C $SRC --exclude=__pycache__ --exclude=*.egg-info -cf - ${ship[*]} | tar -C $rel --no-same-owner -xf -"
    [ -n "$DRY_RUN" ] || tar -C "$SRC" --exclude=__pycache__ --exclude='*.egg-info' -cf - "${ship[@]}" |
        tar -C "$rel" --no-same-owner -xf -
    # --system-site-packages: Debian's numpy and lgpio (gpiozero's backend on a Pi).
    run "$PYTHON" -m venv --system-site-packages "$venv"
    if [ -n "$wheelhouse" ]; then
        from=(--no-index --find-links "$wheelhouse")
    else
        from=(--index-url https://pypi.org/simple)
    fi
    # One venv serves every service here, so its lock covers what is asked and what is
    # installed already (upgrading one never takes another's packages away). Each lock holds
    # the one before: station < display < history.
    lock="$rel/requirements/station.txt"
    if [ -n "$display" ] || [ -e "$UNITS/gym-display.service" ]; then
        lock="$rel/requirements/display.txt"
    fi
    if [ -n "$history" ] || [ -e "$UNITS/gym-history.service" ]; then
        lock="$rel/requirements/history.txt"
    fi
    pip=("$venv/bin/python" -m pip install --quiet --require-hashes "${from[@]}")
    run "${pip[@]}" -r "$rel/requirements/build.txt"
    run "${pip[@]}" -r "$lock"
    # The project itself, built here by the setuptools just installed (no download).
    run "$venv/bin/python" -m pip install --quiet --no-deps --no-index --no-build-isolation "$rel"
    smoke="import numpy, paho.mqtt.client, monitor.cli"
    [ -n "$station" ] && smoke+=", gpiozero, smbus2"
    [ -n "$display" ] && smoke+=", monitor.display"
    [ -n "$history" ] && smoke+=", monitor.history.service, sqlalchemy, alembic, psycopg"
    run "$venv/bin/python" -c "$smoke"

    # Live: one atomic rename of the "current" symlink; the fixed paths the units use
    # (/opt/gym-monitor/venv, README.md, hardware) point through it.
    run ln -sfn "$release" "$PREFIX/current.new"
    run mv -T "$PREFIX/current.new" "$PREFIX/current"
    for link in venv README.md hardware; do
        # An install from before releases had a real venv and src folder here.
        if [ -d "$PREFIX/$link" ] && [ ! -L "$PREFIX/$link" ]; then run rm -rf "$PREFIX/$link"; fi
        run ln -sfn "current/$link" "$PREFIX/$link"
    done
    [ -d "$PREFIX/src" ] && run rm -rf "$PREFIX/src"
    # Keep the live release and the one before it (to go back: point "current" at it).
    if [ -z "$DRY_RUN" ]; then
        ls -1dt "$PREFIX"/releases/*/ | tail -n +3 | while read -r old; do
            [ "$(realpath "$old")" = "$(realpath "$PREFIX/current")" ] || run rm -rf "$old"
        done
    fi
fi

# ------------------------------------------------------------------ config
if [ -n "$station$display$history" ]; then
    mapfile -t etc_owner < <(owner root "$([ -n "$station" ] && echo gym-monitor || echo root)")
    run install -d -m 0750 "${etc_owner[@]}" "$ETC"
fi
if [ -n "$station" ]; then
    if [ -e "$ETC/monitor.toml" ]; then
        echo "keeping the existing $ETC/monitor.toml"
    else
        mapfile -t o < <(owner root gym-monitor)
        run install -m 0640 "${o[@]}" config/monitor.toml "$ETC/monitor.toml"
    fi
    if [ -n "$mqtt_password" ]; then
        mapfile -t o < <(owner root gym-monitor)
        run install -m 0640 "${o[@]}" "$mqtt_password" "$ETC/mqtt-password"
    fi
fi
if [ -n "$display" ]; then
    if [ -e "$ETC/display.toml" ]; then
        echo "keeping the existing $ETC/display.toml"
    else
        run install -m 0640 config/display.toml "$ETC/display.toml"
    fi
fi
# The history service runs as a user of its own (DynamicUser=) that cannot read
# /etc/gym-monitor: systemd hands it its config, broker password and the staff file as
# credentials, and a new history.toml names them there.
CREDENTIALS=/run/credentials/gym-history.service
if [ -n "$history" ]; then
    if [ -e "$ETC/history.toml" ]; then
        echo "keeping the existing $ETC/history.toml"
    else
        run install -m 0640 config/history.toml "$ETC/history.toml"
        run sed -i -e 's|^username = ""$|username = "history"|' \
            -e "s|^password_file = \"\"\$|password_file = \"$CREDENTIALS/mqtt-password\"|" \
            -e "s|^staff_file = \".*\"\$|staff_file = \"$CREDENTIALS/staff.json\"|" \
            "$ETC/history.toml"
    fi
fi
if [ -n "$ca" ] && [ -n "$station$display$history" ]; then
    run install -m 0644 "$ca" "$ETC/gym-ca.crt"
fi

# ------------------------------------------------------------------ the broker
add_broker_user() {  # a user with a new random password, kept root-only in gym-users/
    local user="$1" passwd="$MOSQ/gym.passwd" create=()
    if [ -z "$DRY_RUN" ] && [ -f "$passwd" ] && grep -q "^$user:" "$passwd"; then
        echo "broker user $user: exists (its password stays)"
        return
    fi
    [ -n "$DRY_RUN" ] || [ -f "$passwd" ] || create=(-c)
    echo "+ mosquitto_passwd ${create[*]:+${create[*]} }$passwd $user   (a new password: $MOSQ/gym-users/$user.password)"
    [ -n "$DRY_RUN" ] && return
    local pw
    pw="$(openssl rand -base64 18)"
    # The password goes through a pipe, never a command line that ps could show.
    printf '%s\n%s\n' "$pw" "$pw" | mosquitto_passwd "${create[@]}" "$passwd" "$user" >/dev/null
    (umask 077; printf '%s\n' "$pw" >"$MOSQ/gym-users/$user.password")
}
if [ -n "$broker" ]; then
    run install -d -m 0755 "$MOSQ" "$MOSQ/conf.d"
    run install -m 0644 config/mosquitto/mosquitto.conf "$MOSQ/conf.d/gym.conf"
    mapfile -t o < <(owner root mosquitto)
    run install -m 0640 "${o[@]}" config/mosquitto/acl "$MOSQ/gym.acl"
    cert_group=mosquitto
    [ -n "$ROOT" ] && cert_group=""   # (no owners under --root)
    run bash config/mosquitto/make-certs.sh --cert-dir "$MOSQ/certs" --ca-dir "$MOSQ/ca" \
        --group "$cert_group" "${broker_names[@]}"
    run install -d -m 0700 "$MOSQ/gym-users"
    service_users=(display operator integrator homeassistant)
    [ -n "$history" ] && service_users+=(history)   # the history service on this machine
    for user in "${service_users[@]}" "${add_users[@]}"; do
        add_broker_user "$user"
    done
    if [ -z "$ROOT" ]; then
        run chown root:mosquitto "$MOSQ/gym.passwd"
    fi
    run chmod 0640 "$MOSQ/gym.passwd"
    if [ -n "$display" ]; then   # the display on the broker's own machine
        if [ -e "$ETC/display-mqtt.password" ]; then
            echo "keeping the existing $ETC/display-mqtt.password"
        else
            run install -m 0600 "$MOSQ/gym-users/display.password" "$ETC/display-mqtt.password"
        fi
    fi
    if [ -n "$history" ]; then   # the history service on the broker's own machine
        if [ -e "$ETC/history-mqtt.password" ]; then
            echo "keeping the existing $ETC/history-mqtt.password"
        else
            run install -m 0600 "$MOSQ/gym-users/history.password" "$ETC/history-mqtt.password"
        fi
    fi
    if [ -n "$station$display$history" ] && [ -z "$ca" ]; then
        run install -m 0644 "$MOSQ/certs/gym-ca.crt" "$ETC/gym-ca.crt"
    fi
    system systemctl enable mosquitto.service
    system systemctl restart mosquitto.service
fi

# ------------------------------------------------------------------ units and services
if [ -n "$station$display$history" ]; then
    run install -d -m 0755 "$UNITS"
fi
[ -n "$station" ] && run install -m 0644 systemd/gym-monitor.service "$UNITS/gym-monitor.service"
[ -n "$display" ] && run install -m 0644 systemd/gym-display.service "$UNITS/gym-display.service"
[ -n "$history" ] && run install -m 0644 systemd/gym-history.service "$UNITS/gym-history.service"
[ -n "$station$display$history" ] && system systemctl daemon-reload

enable() {  # enable at boot, and (re)start now so that an upgrade runs the new release
    if [ -n "$ROOT" ]; then
        if command -v systemctl >/dev/null; then
            run systemctl --root="$ROOT" enable "$1"
        else
            echo "- no systemctl here: $1 not enabled under $ROOT"
        fi
    else
        run systemctl enable "$1"
        run systemctl restart "$1"
    fi
}

# The [station] id a config file gives (the default when it names none), or nothing.
station_id() {
    "$venv/bin/python" - "$1" 2>/dev/null <<'EOF' || true
import sys, tomllib
from monitor.config import StationConfig
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f).get("station", {}).get("id", StationConfig().id))
EOF
}

if [ -n "$station" ]; then
    config="$ETC/monitor.toml"
    as_service=(runuser -u gym-monitor --)
    [ -n "$ROOT" ] && as_service=()
    if [ -n "$DRY_RUN" ]; then
        echo "+ ${as_service[*]} $venv/bin/gym-monitor check-config $config"
        echo "  (then, if it passes and [station] id is not the example's, nor reserved:" \
             "${acl_users[*]} ${acl_levels[*]})"
        enable_steps="systemctl enable gym-monitor.service; systemctl restart gym-monitor.service"
        [ -n "$ROOT" ] && enable_steps="systemctl --root=$ROOT enable gym-monitor.service"
        echo "+ $enable_steps"
    else
        problems=""
        if ! out="$("${as_service[@]}" "$venv/bin/gym-monitor" check-config "$config" 2>&1)"; then
            problems="$out"
        fi
        id="$(station_id "$config")"
        example_id="$(station_id "$EXAMPLE_CONFIG")"
        if [ -z "$problems" ] && [ "$id" = "$example_id" ]; then
            problems="[station] id is still the example's \"$example_id\": give this station its own"
        fi
        why="$(reserved "$id")"
        if [ -n "$why" ]; then   # whatever else is wrong: one line of its own
            problems+="${problems:+$'\n'}[station] id \"$id\" is $why, not a station:"
            problems+=" give this station an id of its own"
        fi
        if [ -z "$problems" ]; then
            echo "$config: checked, station \"$id\""
            enable gym-monitor.service
        else
            echo
            echo "The station is installed but NOT started: $config is not ready."
            echo "$problems" | sed 's/^/  /'
            echo "Next:"
            echo "  1. edit $config: [station] id, the [[imu]] sensors, [mqtt] (host, port 8883,"
            echo "     username = the station id, password_file, tls_ca = /etc/gym-monitor/gym-ca.crt)"
            echo "  2. check it:  sudo -u gym-monitor $PREFIX/venv/bin/gym-monitor check-config $config"
            echo "  3. start it:  sudo systemctl enable --now gym-monitor   (or run this installer again)"
            if [ -z "$ROOT" ] && systemctl is-active --quiet gym-monitor.service 2>/dev/null; then
                echo "WARNING: gym-monitor is running the previous release; it will not start again" \
                     "with this config. Fix the config, then: sudo systemctl restart gym-monitor"
            fi
        fi
        if [ ! -e "$ROOT/dev/i2c-1" ] && [ -z "$ROOT" ]; then
            echo "note: /dev/i2c-1 is missing: add dtparam=i2c_arm=on to /boot/firmware/config.txt and" \
                 "reboot (hardware/boot-config.md); the station waits for the bus until then"
        fi
    fi
fi
if [ -n "$display" ]; then
    # The files the unit hands the service (its LoadCredential= lines) must all exist, and
    # display.toml must load, or the service cannot start.
    problems=()
    while IFS= read -r path; do
        [ -e "$ROOT$path" ] || problems+=("missing $path")
    done < <(sed -n 's/^LoadCredential=[^:]*:\(.*\)$/\1/p' systemd/gym-display.service)
    if [ -n "$DRY_RUN" ]; then
        echo "+ $venv/bin/python -c 'load_config($ETC/display.toml)'   (monitor.display.config)"
        echo "  (then, if it loads and every LoadCredential= file of the unit exists:)"
        problems=()
    elif [ -e "$ETC/display.toml" ] && ! out="$("$venv/bin/python" -c '
import sys
from monitor.display.config import load_config
from monitor.errors import MonitorError
try:
    load_config(sys.argv[1])
except MonitorError as err:
    sys.exit(str(err))' "$ETC/display.toml" 2>&1)"; then
        problems+=("$out")
    fi
    if [ "${#problems[@]}" -eq 0 ]; then
        enable gym-display.service
    else
        echo
        echo "The display is installed but NOT started:"
        printf '  %s\n' "${problems[@]}"
        echo "Next:"
        echo "  - the display's broker password: $ETC/display-mqtt.password (mode 0600), from the"
        echo "    broker's /etc/mosquitto/gym-users/display.password (install.sh --broker --display does it)"
        echo "  - staff who may acknowledge: sudo $PREFIX/venv/bin/gym-monitor staff add NAME"
        echo "  - $ETC/display.toml: the address, host names and stations (config/display.toml explains)"
        echo "  then: sudo systemctl enable --now gym-display   (or run this installer again)"
    fi
fi
if [ -n "$history" ]; then
    # As for the display: every file the unit hands the service must exist, and history.toml
    # must load and name no file the service's own user could not read.
    problems=()
    while IFS= read -r path; do
        [ -e "$ROOT$path" ] || problems+=("missing $path")
    done < <(sed -n 's/^LoadCredential=[^:]*:\(.*\)$/\1/p' systemd/gym-history.service)
    if [ -n "$DRY_RUN" ]; then
        echo "+ $venv/bin/python -c 'load($ETC/history.toml)'   (monitor.history.config)"
        echo "  (then, if it loads and every LoadCredential= file of the unit exists:)"
        problems=()
    elif [ -e "$ETC/history.toml" ] && ! out="$("$venv/bin/python" -c '
import sys
from monitor.errors import MonitorError
from monitor.history.config import load
try:
    config = load(sys.argv[1])
except MonitorError as err:
    sys.exit(str(err))
files = {
    "mqtt.password_file": config.mqtt.password_file,
    "mqtt.tls_ca": config.mqtt.tls_ca,
    "web.staff_file": config.web.staff_file if config.web.enabled else "",
    "history.database_password_file": config.database_password_file,
}
problems = [
    f"{sys.argv[1]}: {key}: {path} is not readable by the service (DynamicUser): use "
    f"a credential ({sys.argv[2]}/...) or a world-readable path"
    for key, path in files.items()
    if path.startswith("/etc/gym-monitor/")
]
if config.mqtt.password_file and not config.mqtt.username:
    problems.append(f"{sys.argv[1]}: mqtt.username: empty, with a password file")
sys.exit("\n".join(problems) or None)' "$ETC/history.toml" "$CREDENTIALS" 2>&1)"; then
        mapfile -t -O "${#problems[@]}" problems <<<"$out"
    fi
    if [ "${#problems[@]}" -eq 0 ]; then
        enable gym-history.service
    else
        echo
        echo "The history service is installed but NOT started:"
        printf '  %s\n' "${problems[@]}"
        echo "Next:"
        echo "  - its broker password: $ETC/history-mqtt.password (mode 0600), from the broker's"
        echo "    /etc/mosquitto/gym-users/history.password (install.sh --broker --history does it)"
        echo "  - staff who may read the coach's pages:"
        echo "    sudo $PREFIX/venv/bin/gym-monitor staff add NAME"
        echo "  - $ETC/history.toml: [mqtt] host, and [history] database for PostgreSQL"
        echo "    (config/history.toml explains every key)"
        echo "  then: sudo systemctl enable --now gym-history   (or run this installer again)"
    fi
fi
if [ -n "$broker" ]; then
    echo "broker: TLS on 8883 with $MOSQ/certs/gym-ca.crt; passwords in $MOSQ/gym-users/ (root only)."
    echo "  each station needs gym-ca.crt and its own password file:"
    echo "  sudo bash systemd/install.sh --ca gym-ca.crt --mqtt-password <station id>.password"
fi
[ -n "$station" ] && echo "done: journalctl -u gym-monitor -f shows the station's log"
exit 0
