#!/usr/bin/env bash
# The gym's own certificate authority and the broker's certificate, for Mosquitto's
# TLS listener (port 8883). `systemd/install.sh --broker` runs this; run it again by
# hand to add a name or to renew.
#
#   sudo bash config/mosquitto/make-certs.sh [NAME ...]
#   sudo bash config/mosquitto/make-certs.sh broker.local 192.168.1.10
#
# NAME: every host name or IP address clients use to reach the broker. Without
# names: this machine's host name, <host name>.local (mDNS), its fully qualified
# name, localhost and 127.0.0.1.
#
# Options: --cert-dir DIR (default /etc/mosquitto/certs), --ca-dir DIR (default
# /etc/mosquitto/ca), --group GROUP (default mosquitto; "" leaves the group alone).
#
# Makes the CA once: CA_DIR/gym-ca.key (0600, never leaves this machine) and
# CERT_DIR/gym-ca.crt (0644: copy it to every station and display). Issues
# CERT_DIR/broker.crt and broker.key (0640, group GROUP so Mosquitto can read it)
# when they are missing, do not cover every NAME, were not signed by this CA, or
# expire within 30 days; otherwise leaves them alone. Prints what it did.
set -euo pipefail
cert_dir=/etc/mosquitto/certs
ca_dir=/etc/mosquitto/ca
group=mosquitto
names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cert-dir) cert_dir="$2"; shift 2 ;;
        --ca-dir) ca_dir="$2"; shift 2 ;;
        --group) group="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "make-certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) names+=("$1"); shift ;;
    esac
done
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is missing (apt install openssl)" >&2; exit 1; }

if [ "${#names[@]}" -eq 0 ]; then
    host="$(hostname)"
    names=("$host" "$host.local")
    fqdn="$(hostname -f 2>/dev/null || true)"
    case "$fqdn" in "$host"|"$host.local"|"") ;; *) names+=("$fqdn") ;; esac
    names+=(localhost 127.0.0.1)
fi

is_ip() { [[ "$1" =~ ^[0-9]+(\.[0-9]+){3}$ || "$1" == *:* ]]; }

# subjectAltName entries in the form openssl prints them back ("DNS:x", "IP Address:1.2.3.4").
wanted=()
alt=""
dns=0; ip=0
for name in "${names[@]}"; do
    if is_ip "$name"; then
        ip=$((ip + 1)); alt+="IP.$ip = $name"$'\n'; wanted+=("IP Address:$name")
    else
        dns=$((dns + 1)); alt+="DNS.$dns = $name"$'\n'; wanted+=("DNS:$name")
    fi
done

install -d -m 0755 "$cert_dir"
install -d -m 0700 "$ca_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = @alt
[alt]
$alt
EOF
# EC P-256: as strong as RSA 3072, and made in a blink on a Pi Zero.
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

ca_key="$ca_dir/gym-ca.key"
ca_crt="$cert_dir/gym-ca.crt"
if [ ! -s "$ca_key" ] || [ ! -s "$ca_crt" ]; then
    (umask 077; openssl req -x509 -config "$work/openssl.cnf" -extensions ca_ext "${newkey[@]}" \
        -days 3650 -subj "/CN=Gym tremor monitor CA ($(hostname))" \
        -keyout "$work/ca.key" -out "$work/ca.crt" 2>"$work/log") || { cat "$work/log" >&2; exit 1; }
    install -m 0600 "$work/ca.key" "$ca_key"
    install -m 0644 "$work/ca.crt" "$ca_crt"
    echo "made the gym's CA: $ca_crt (give this to every client); its key: $ca_key"
fi

crt="$cert_dir/broker.crt"
key="$cert_dir/broker.key"
reason=""
if [ ! -s "$crt" ] || [ ! -s "$key" ]; then
    reason="none yet"
elif ! openssl verify -CAfile "$ca_crt" "$crt" >/dev/null 2>&1; then
    reason="not signed by $ca_crt"
elif ! openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null; then
    reason="expires within 30 days"
else
    have="$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')"
    for w in "${wanted[@]}"; do
        case ",$have," in *",${w// /},"*) ;; *) reason="it does not cover $w" ;; esac
    done
fi
if [ -n "$reason" ]; then
    (umask 077; openssl req -new -config "$work/openssl.cnf" "${newkey[@]}" -subj "/CN=${names[0]}" \
        -keyout "$work/broker.key" -out "$work/broker.csr" 2>"$work/log" &&
     openssl x509 -req -in "$work/broker.csr" -CA "$ca_crt" -CAkey "$ca_key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 \
        -extfile "$work/openssl.cnf" -extensions server_ext -out "$work/broker.crt" 2>>"$work/log") \
        || { cat "$work/log" >&2; exit 1; }
    owner=()
    if [ -n "$group" ] && [ "$(id -u)" -eq 0 ] && getent group "$group" >/dev/null; then
        owner=(-o root -g "$group")
    fi
    install -m 0640 "${owner[@]}" "$work/broker.key" "$key"
    install -m 0644 "$work/broker.crt" "$crt"
    echo "issued $crt ($reason) for: ${names[*]}"
else
    echo "kept $crt: valid, signed by $ca_crt, covers: ${names[*]}"
fi
