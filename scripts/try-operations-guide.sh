#!/usr/bin/env bash
# Follow docs/operations.md on a fresh Debian 12 host, as a new operator would, and stop at the
# first step that does not do what the guide says.
#
# The "host" is a container booted with systemd as PID 1 (debootstrap + systemd-nspawn), so the
# units, sysusers, the watchdog, journald and the socket's group are the real thing. The
# guide's own ```sh blocks are run as written (only /path/to/… is filled in); the checks
# between them are what the guide promises.
#
#   sudo scripts/try-operations-guide.sh [WORKDIR]     # about 2 minutes (3 the first time)
#
# Needs root, debootstrap and systemd-nspawn (Debian: apt install debootstrap
# systemd-container), and Debian's and PyPI's package servers. The container shares the host's
# network: nothing else may listen on 127.0.0.1:8787 meanwhile. WORKDIR (default: a new
# directory under /var/tmp) keeps the host's file system (rootfs/) for a look afterwards, and
# the untouched debootstrap (base/), so that the next run there starts fresh without it.
# This is not part of `make test`: it needs root and the network, and takes minutes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /var/tmp/signalos-guide.XXXXXX)}
root="$work/rootfs"
mkdir -p "$work"
guide="$repo/docs/operations.md"

die() { echo "try-operations-guide: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run it as root (it creates a container)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt install debootstrap"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt install systemd-container"
if (exec 3<>/dev/tcp/127.0.0.1/8787) 2>/dev/null; then
    die "something listens on 127.0.0.1:8787 already; stop it first (the container shares the network)"
fi

# The k-th (1-based) ```sh block (```LANG with a third argument) under a heading of the guide,
# as written.
block() {
    python3 - "$guide" "$1" "$2" "${3:-sh}" <<'PY'
import re, sys
text, heading, k, lang = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), sys.argv[4]
section = text.split(f"\n{heading}\n", 1)[1]
section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
print(re.findall(rf"```{lang}\n(.*?)```", section, re.S)[k - 1], end="")
PY
}

step() { printf '\n== %s\n' "$*"; }

# ---- the host ---------------------------------------------------------------------------------
step "a fresh Debian 12 in $root"
base="$work/base"  # the untouched debootstrap, kept for the next run in the same WORKDIR
if [ ! -x "$base/usr/lib/systemd/systemd" ]; then
    rm -rf "$base"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,cron,ca-certificates \
        bookworm "$base" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || die "debootstrap failed: see $work/debootstrap.log"
fi
rm -rf "$root"
cp -a "$base" "$root"
echo trading-host >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 trading-host\n' >"$root/etc/hosts"
# Trust what the host trusts (pip behind a TLS-inspecting proxy needs it).
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
rm -rf "$root/root/signalos-checkout"
git clone -q "$repo" "$root/root/signalos-checkout"

systemd-nspawn -b -D "$root" --register=no --keep-unit --console=pipe \
    --machine=signalos-guide >"$work/boot.log" 2>&1 &
nspawn=$!
init_pid() { pgrep -P "$nspawn" -f '/systemd$' | head -1; }
cleanup() {
    local pid
    pid=$(init_pid || true)
    [ -n "$pid" ] && kill -RTMIN+4 "$pid" 2>/dev/null  # poweroff
    wait "$nspawn" 2>/dev/null || true
}
trap cleanup EXIT
# A root login shell on the host: `host 'commands'`.
host() {
    nsenter -t "$(init_pid)" -a -- /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -l -c "cd /root/signalos-checkout && $1"
}
for _ in $(seq 1 60); do
    [ -n "$(init_pid || true)" ] && host 'systemctl is-system-running --wait' >/dev/null 2>&1 && break
    sleep 1
done
host 'update-ca-certificates >/dev/null 2>&1; systemctl is-system-running' \
    || die "the container did not boot: see $work/boot.log"
expect() {  # expect TEXT OUTPUT: the guide promised TEXT
    grep -qF -- "$1" <<<"$2" || { printf '%s\n' "$2"; die "expected to see: $1"; }
}
eventually() {  # eventually SECONDS TEXT 'host command': TEXT appears in its output in time
    local seen=""
    for _ in $(seq 1 "$1"); do
        seen=$(host "$3" 2>&1) || true
        grep -qF -- "$2" <<<"$seen" && return 0
        sleep 1
    done
    expect "$2" "$seen"
}

# ---- the guide ------------------------------------------------------------------------------
step "Install (steps 0 to 4)"
out=$(host "$(block '## Install' 1 | sed 's#/path/to/signalos-checkout#/root/signalos-checkout#')" 2>&1)
expect 'Status: "listening on 127.0.0.1:8787; default: running; agent: disconnected"' "$out"
expect '{"status":"ready"}' "$out"
expect 'mode     running' "$out"
out=$(host 'journalctl -u signalosd -b -p warning --no-pager' 2>&1)
expect '-- No entries --' "$out"

step "Tokens: dashboard, operator and agent tokens"
out=$(host "$(block '## Tokens' 2 | grep -v 'revoke tok_')" 2>&1)
expect 'created token' "$out"
token=$(grep -o 'tok_[0-9a-f]*  default  viewer' <<<"$out" | cut -d' ' -f1)
out=$(host "sudo -u signalos /opt/signalos/venv/bin/signalosd token revoke $token" 2>&1)
expect "revoked token $token" "$out"

step "Tokens: the paper agent as a service"
host "$(block '## Tokens' 3)" >/dev/null 2>&1
eventually 30 'agent: connected' 'systemctl status signalosd --no-pager'

step "Local control socket: a member of the group, and someone who is not"
host 'useradd -m -s /bin/bash alice && useradd -m -s /bin/bash bob'
host "$(block '## Local control socket' 1 | head -1)"
out=$(host 'su - alice -c "signalos stop && signalos tail -n 3 --no-follow"' 2>&1)
expect 'mode     halted' "$out"
expect 'connecting to the control socket /run/signalos/signalosd.sock' "$out"
expect 'emergency_stop' "$out"
out=$(host 'su - bob -c "signalos status"; echo "exit $?"' 2>&1)
expect 'is closed to user bob' "$out"
expect 'exit 2' "$out"

step "Local control socket: a group member's cron job, no token"
host 'su - alice -c "signalos resume --from-halt" >/dev/null'
# The guide's pause line, due every minute instead of at 13:25 on weekdays.
line=$(block '## Local control socket' 2 | grep -m1 ' pause ' | sed -E 's/^([^ ]+ +){5}/* * * * * /')
host "printf '%s\n' 'MAILTO=\"\"' '$line' | crontab -u alice -"
eventually 75 'mode     paused' 'signalos status'
host 'crontab -u alice -r'
out=$(host 'signalos --json tail -n 1 --type trading_paused --no-follow' 2>&1)
expect '"label":"alice"' "$out"
expect 'US open' "$out"
host 'su - alice -c "signalos stop" >/dev/null'

step "Logs and status"
out=$(host "$(block '## Logs and status' 1 | grep -v -- ' -f ')" 2>&1)
expect 'default: halted; agent: connected' "$out"

step "Restarts: a killed daemon comes back halted; so does one the watchdog kills"
host 'kill -9 "$(systemctl show -p MainPID --value signalosd)"'
sleep 4
expect 'mode     halted' "$(host 'signalos status')"
host 'kill -STOP "$(systemctl show -p MainPID --value signalosd)"'
eventually 50 'Watchdog timeout' 'journalctl -u signalosd --no-pager'
sleep 4
expect 'mode     halted' "$(host 'signalos status')"
out=$(host 'for i in 1 2 3 4 5 6; do systemctl restart signalosd; done; systemctl is-active signalosd' 2>&1)
expect 'active' "$out"

step "Backup"
out=$(host "$(block '### Backup' 1)" 2>&1)
expect 'integrity ok' "$out"

step "Upgrading"
out=$(host "$(block '## Upgrading' 1 | sed 's#/path/to/new-checkout#/root/signalos-checkout#')" 2>&1)
expect 'Successfully installed signalos' "$out"
expect 'event=listening' "$out"

step "Restore"
backup=$(host 'ls /var/backups/signalos/signalos-*.db | head -1')
host 'signalos resume --from-halt >/dev/null'
out=$(host "$(block '### Restore' 1 | sed "s#/var/backups/signalos/signalos-2026-01-05.db#$backup#")" 2>&1)
expect 'restored /var/lib/signalos/signalos.db' "$out"
expect 'mode     halted' "$out"   # the backup's mode: it was taken while halted

step "Metrics: Prometheus scrapes with its metrics token; the halted desk is an alert"
host "$(block '## Metrics' 1)" >/dev/null 2>&1
for k in 1 2; do  # each YAML block goes to the file its first line names
    yaml=$(block '## Metrics' "$k" yaml)
    file=$(head -1 <<<"$yaml" | sed 's/^# //')
    if [ "$k" = 1 ]; then  # "keep its global: section": here, intervals short enough to wait for
        yaml=$(printf 'global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n%s' "$yaml")
    fi
    printf '%s\n' "$yaml" >"$root$file"
done
out=$(host 'promtool check config /etc/prometheus/prometheus.yml && systemctl restart prometheus' 2>&1)
expect 'SUCCESS: 5 rules found' "$out"
eventually 40 '"state":"firing"' 'curl -s localhost:9090/api/v1/alerts'
expect '"health":"up"' "$(host 'curl -s localhost:9090/api/v1/targets')"
out=$(host 'curl -s localhost:9090/api/v1/alerts')
expect '"alertname":"SignalosHalted"' "$out"
expect '"state":"firing"' "$out"

step "TLS: the daemon's own certificate (self-signed here), and the paper agent pointed at it"
host 'apt-get install -y openssl >/dev/null 2>&1 && echo "127.0.0.1 signalos.example.com" >>/etc/hosts
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=signalos.example.com \
        -addext subjectAltName=DNS:signalos.example.com -keyout privkey.pem -out fullchain.pem \
        2>/dev/null'
out=$(host "$(block "### The daemon's own certificate" 1 \
    | sed 's#curl -s https#curl -s --cacert /etc/signalos/tls/fullchain.pem https#')" 2>&1)
expect 'event=listening url=https://0.0.0.0:8787' "$out"
expect '{"status":"ready"}' "$out"
host "$(block "### The daemon's own certificate" 2 | sed 's/^#Environment=SSL_CERT_FILE/Environment=SSL_CERT_FILE/')"
eventually 30 'agent: connected' 'systemctl status signalosd --no-pager'
expect 'url=wss://signalos.example.com:8787/ws/agent' "$(host 'journalctl -u signalos-agent -n 20 --no-pager')"
out=$(host 'signalos status; ls -l /run/credentials/signalosd.service/' 2>&1)  # socket unchanged
expect 'agent    connected' "$out"
expect 'tls.key' "$out"

printf '\ntry-operations-guide: every step did what docs/operations.md says (work dir: %s)\n' "$work"
