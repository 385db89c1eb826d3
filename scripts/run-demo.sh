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

# Starts a sandbox in the background and prints the port from its "listening on 127.0.0.1:PORT" line.
start_sandbox() {
    local log="$1"; shift
    "$SANDBOX" "$@" > "$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        if port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -n1 | cut -d: -f2) && [ -n "$port" ]; then
            echo "$port"; return 0
        fi
        sleep 0.1
    done
    echo "sandbox did not start: $(cat "$log")" >&2
    return 1
}

# Example credentials for the local sandboxes only; real deployments set their own.
export SAILTHRU_API_KEY="${SAILTHRU_API_KEY:-0123456789abcdef0123456789abcdef}"
export SAILTHRU_API_SECRET="${SAILTHRU_API_SECRET:-demo-sailthru-secret}"
export SENDGRID_API_KEY="${SENDGRID_API_KEY:-SG.demo-sendgrid-key}"
export SENDGRID_BASE_URL="${SENDGRID_BASE_URL:-http://127.0.0.1:9}"
export MAPP_SFTP_HOST="${MAPP_SFTP_HOST:-127.0.0.1}"
export MAPP_SFTP_PORT="${MAPP_SFTP_PORT:-2222}"
export MAPP_SFTP_USER="${MAPP_SFTP_USER:-$(id -un)}"
export MAPP_SFTP_KEY="${MAPP_SFTP_KEY:-$DEMO/id_ed25519}"
export MAPP_KNOWN_HOSTS="${MAPP_KNOWN_HOSTS:-$DEMO/known_hosts}"

step() { printf '\n== %s\n' "$*"; }

rm -rf "$DEMO/sailthru-state"
sailthru_port=$(start_sandbox "$DEMO/sailthru.log" sailthru --port 0 --api-key "$SAILTHRU_API_KEY" \
    --secret "$SAILTHRU_API_SECRET" --state "$DEMO/sailthru-state" --job-delay 0.2 --seed-file Fixtures/sailthru-seed.json)
export SAILTHRU_BASE_URL="http://127.0.0.1:$sailthru_port"
echo "Sailthru sandbox on $SAILTHRU_BASE_URL (state in $DEMO/sailthru-state)"

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

step "ferry history"
$FERRY history
