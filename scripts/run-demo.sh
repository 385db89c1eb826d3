#!/usr/bin/env bash
# `make run`: the example setup end to end on the embedded default store (./ferry.sqlite),
# against local sandbox servers on 127.0.0.1 that this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

FERRY=.build/debug/ferry
SANDBOX=.build/debug/ferry-sandbox
DEMO=.build/demo
mkdir -p "$DEMO"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a sandbox in the background and sets the variable named $1 to its port (from its
# "listening on 127.0.0.1:PORT" line). Not called in $( … ): the pid must reach the exit trap.
start_sandbox() {
    local var="$1" log="$2"; shift 2
    "$SANDBOX" "$@" > "$log" 2>&1 &
    pids+=($!)
    local port=""
    for _ in $(seq 1 100); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -n1 | cut -d: -f2 || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "sandbox did not start: $(cat "$log")" >&2; return 1; }
    printf -v "$var" '%s' "$port"
}

# Example credentials for the local sandboxes only; real deployments set their own.
export SAILTHRU_API_KEY="${SAILTHRU_API_KEY:-0123456789abcdef0123456789abcdef}"
export SAILTHRU_API_SECRET="${SAILTHRU_API_SECRET:-demo-sailthru-secret}"
export SENDGRID_API_KEY="${SENDGRID_API_KEY:-SG.demo-sendgrid-key}"

step() { printf '\n== %s\n' "$*"; }

# A real OpenSSH sshd on 127.0.0.1 standing in for Mapp's SFTP drop: keys made here, files land in $DEMO/sftp-root.
start_sshd() {
    local dir="$PWD/$DEMO/sshd" root="$PWD/$DEMO/sftp-root"
    rm -rf "$dir" "$root"; mkdir -p "$dir" "$root"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519"
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    cat > "$dir/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d $root
CONFIG
    mkdir -p /run/sshd 2>/dev/null || true
    /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2> "$dir/sshd.log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
    export MAPP_SFTP_HOST=127.0.0.1 MAPP_SFTP_PORT=$port MAPP_SFTP_USER=$(id -un)
    export MAPP_SFTP_KEY="$dir/client_ed25519" MAPP_KNOWN_HOSTS="$dir/known_hosts"
    echo "sshd (Mapp SFTP stand-in) on 127.0.0.1:$port, files in $root"
}

rm -rf "$DEMO/sailthru-state"
start_sandbox sailthru_port "$DEMO/sailthru.log" sailthru --port 0 --api-key "$SAILTHRU_API_KEY" \
    --secret "$SAILTHRU_API_SECRET" --state "$DEMO/sailthru-state" --job-delay 0.2 --seed-file Fixtures/sailthru-seed.json
export SAILTHRU_BASE_URL="http://127.0.0.1:$sailthru_port"
echo "Sailthru sandbox on $SAILTHRU_BASE_URL (state in $DEMO/sailthru-state)"
rm -rf "$DEMO/sendgrid-state"
start_sandbox sendgrid_port "$DEMO/sendgrid.log" sendgrid --port 0 --api-key "$SENDGRID_API_KEY" \
    --state "$DEMO/sendgrid-state" --job-delay 0.2
export SENDGRID_BASE_URL="http://127.0.0.1:$sendgrid_port"
echo "SendGrid sandbox on $SENDGRID_BASE_URL (state in $DEMO/sendgrid-state)"
rm -rf "$DEMO/mail"
start_sandbox smtp_port "$DEMO/smtp.log" smtp --port 0 --dir "$DEMO/mail"
export FERRY_SMTP_URL="smtp://127.0.0.1:$smtp_port" FERRY_SMTP_FROM="${FERRY_SMTP_FROM:-ferry@localhost}"
echo "SMTP sandbox on $FERRY_SMTP_URL (mail in $DEMO/mail)"
start_sshd

step "ferry validate"
$FERRY validate

step "ferry profiles load Fixtures/profiles.jsonl"
$FERRY profiles load Fixtures/profiles.jsonl

step "ferry segments"
$FERRY segments

for connection in sailthru-nightly sendgrid-daily mapp-weekly; do
    step "ferry next $connection --count 3"
    $FERRY next "$connection" --count 3
done

sailthru_lists() {
    "$SANDBOX" sailthru dump --state "$DEMO/sailthru-state" | python3 -c '
import json, sys
state = json.load(sys.stdin)
users = state.get("users", {})
users = users.values() if isinstance(users, dict) else users
counts = {}
for user in users:
    for name in (user.get("lists") or {}):
        counts[name] = counts.get(name, 0) + 1
print("users:", len(list(users)) if not isinstance(users, list) else len(users), " list members:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
'
}

step "Sailthru sandbox before (ferry-sandbox sailthru dump)"
sailthru_lists
step "ferry run sailthru-nightly --now   (import Newsletter + VIP Customers, then export newsletter)"
$FERRY run sailthru-nightly --now 2>/dev/null || true
step "Sailthru sandbox after"
sailthru_lists
step "ferry profiles show jane.doe@example.com   (created by the import: set_if_empty, add, sum, list names)"
$FERRY profiles show jane.doe@example.com

step "ferry run sendgrid-daily --now"
$FERRY run sendgrid-daily --now 2>/dev/null
step "SendGrid sandbox: segments and contact count (ferry-sandbox sendgrid dump)"
"$SANDBOX" sendgrid dump --state "$DEMO/sendgrid-state" | python3 -c '
import json, sys
state = json.load(sys.stdin)
print("contacts:", len(state.get("contacts", [])))
for segment in state.get("segments", []):
    print("segment", segment.get("name"), "->", segment.get("contact_count", len(segment.get("members", []))), "contacts")
'

step "Mail from sendgrid-daily's notify block (ferry-sandbox smtp, $DEMO/mail)"
for mail in "$DEMO"/mail/*.eml; do
    echo "$mail: $(grep -m1 '^X-Sandbox-Rcpt-To:' "$mail" | cut -d' ' -f2-) — $(grep -m1 '^Subject:' "$mail" | cut -d' ' -f2-)"
done

step "ferry run mapp-weekly --now"
$FERRY run mapp-weekly --now 2>/dev/null
published=$(ls "$DEMO"/sftp-root/upload/ferry/*.csv | tail -n 1)
step "head -4 $published"
head -4 "$published"

step "ferry history"
$FERRY history
