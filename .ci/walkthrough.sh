#!/usr/bin/env bash
# Runs README.md's curl walkthrough exactly as written against a fresh server, so the README
# cannot drift from the server. Uses the release-mode binary if built, else the debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${IO_SERVER_BIN:-target/debug/io-server}"
[ -x "$bin" ] || cargo build -q -p io-server
data="$(mktemp -d)"
log="$data.log"
IO_ADMIN_TOKEN=dev-admin-token IO_LOG=warn "$bin" serve --data "$data" --listen 127.0.0.1:8080 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$log"; echo "walkthrough: the server did not start"; exit 1; }
    sleep 0.1
done
script="$(awk '/<!-- walkthrough:begin -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on && !/^```/' README.md)"
out="$(bash -euo pipefail -c "$script")" || { echo "$out"; cat "$log"; echo "walkthrough: a README command failed"; exit 1; }
echo "$out" | tail -n 3
echo "$out" | grep -q "is PROCESSED" || { echo "walkthrough: the message was not PROCESSED"; exit 1; }
echo "walkthrough: ok"
