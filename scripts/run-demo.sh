#!/usr/bin/env bash
# `make run`: the example setup end to end on the embedded default store (./ferry.sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."

FERRY=.build/debug/ferry

# Example credentials for the local sandboxes only; real deployments set their own.
export SAILTHRU_API_KEY="${SAILTHRU_API_KEY:-demo-sailthru-key}"
export SAILTHRU_API_SECRET="${SAILTHRU_API_SECRET:-demo-sailthru-secret}"
export SAILTHRU_BASE_URL="${SAILTHRU_BASE_URL:-http://127.0.0.1:8801}"
export SENDGRID_API_KEY="${SENDGRID_API_KEY:-SG.demo-sendgrid-key}"
export SENDGRID_BASE_URL="${SENDGRID_BASE_URL:-http://127.0.0.1:8802}"
export MAPP_SFTP_HOST="${MAPP_SFTP_HOST:-127.0.0.1}"
export MAPP_SFTP_PORT="${MAPP_SFTP_PORT:-2222}"
export MAPP_SFTP_USER="${MAPP_SFTP_USER:-$(id -un)}"
export MAPP_SFTP_KEY="${MAPP_SFTP_KEY:-.build/demo/id_ed25519}"
export MAPP_KNOWN_HOSTS="${MAPP_KNOWN_HOSTS:-.build/demo/known_hosts}"

step() { printf '\n== %s\n' "$*"; }

step "ferry validate"
$FERRY validate

step "ferry profiles load Fixtures/profiles.jsonl"
$FERRY profiles load Fixtures/profiles.jsonl

step "ferry segments"
$FERRY segments

step "ferry history"
$FERRY history
