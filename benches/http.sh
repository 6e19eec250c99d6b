#!/usr/bin/env bash
# io's HTTP benchmark: io-server (one engine worker, decision at accept, the inbox delivery done
# in the accept's write) next to `reference-server` (a minimal axum + sled server with a
# group-commit flusher: the durable ceiling of this box), loaded by the same bounded client
# (`io-load`), alternately, REPS times. Per server and rep:
#   - full load: closed loop, CONNECTIONS connections for DURATION s: 2xx throughput;
#   - io-server only: then the time until its backlog is empty (every accepted message
#     processed and delivered), so its *sustained* throughput = accepted / (load + drain);
#   - half load: open loop at half the sustained throughput for HALF_DURATION s: p50 / p99
#     latency measured from each request's scheduled time.
# The client shares the 2 cores with the server: the figures are "whole box" figures; compare
# the ratios, not absolute values across runs. Everything runs on loopback, bounded in time.
#
#   benches/http.sh                       # DURATION=20 REPS=3 CONNECTIONS=64 CITIZENS=1000
#   DURATION=5 HALF_DURATION=5 REPS=1 benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
HALF_DURATION=${HALF_DURATION:-10}
REPS=${REPS:-3}
CONNECTIONS=${CONNECTIONS:-64}
CITIZENS=${CITIZENS:-1000}
ADMIN_TOKEN=bench-admin-token

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo "== building release binaries"
cargo build --release -q -p io-server -p io-benches --bins
BIN=target/release

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits (at most 30 s) until `url` answers.
wait_for() {
    for _ in $(seq 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# A field of io-load's JSON line.
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

$BIN/io-load --print-fiscal-codes "$CITIZENS" >"$work/codes"

# Prints "<closed json>|<open json>" for the reference server.
run_reference() {
    local port data pid closed rate open
    port=$(free_port)
    data="$work/ref-$1"
    $BIN/reference-server --listen "127.0.0.1:$port" --data "$data" >"$work/ref.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    sleep 0.5
    # The reference answers only POST: wait until the port accepts connections.
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local url="http://127.0.0.1:$port/api/v1/messages/{fiscal_code}"
    closed=$($BIN/io-load --url "$url" --fiscal-codes "$work/codes" --connections "$CONNECTIONS" --duration "$DURATION" 2>/dev/null)
    rate=$(python3 -c "print(max(1, round(float('$(field "$closed" throughput_2xx_per_s)') / 2)))")
    open=$($BIN/io-load --url "$url" --fiscal-codes "$work/codes" --connections "$CONNECTIONS" --duration "$HALF_DURATION" --rate "$rate" 2>/dev/null)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$closed|$open|0|$(field "$closed" throughput_2xx_per_s)"
}

# Seeds a service (unlimited rate, may write to anyone, may ask for payments: io-load's body
# carries payment data) and the citizens' profiles; prints
# the service's key.
seed_io() {
    python3 - "$1" "$work/codes" "$ADMIN_TOKEN" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, codes, admin = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3]
def call(method, path, body=None, headers=None):
    request = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")
admin_header = {"Authorization": "Bearer " + admin}
service = call("POST", "/adm/services", {
    "service_name": "Tassa rifiuti", "department_name": "Tributi",
    "organization_name": "Comune di Esempio", "organization_fiscal_code": "15376371009",
    "max_allowed_payment_amount": 1000000,
    "groups": ["ApiMessageWrite", "ApiMessageRead", "ApiLimitedProfileRead"]}, admin_header)
key = call("GET", "/adm/services/%s/keys" % service["service_id"], headers=admin_header)["primary_key"]
def profile(code):
    token = call("POST", "/adm/citizen-tokens", {"fiscal_code": code}, admin_header)["token"]
    call("POST", "/app/v1/profile", {"is_inbox_enabled": True},
         {"Authorization": "Bearer " + token})
with ThreadPoolExecutor(16) as pool:
    list(pool.map(profile, codes))
print(key)
PY
}

# The engine's backlog as /metrics shows it.
backlog() { curl -sf "$1/metrics" | sed -n 's/^io_backlog_tasks \([0-9]*\)$/\1/p'; }

# Prints "<closed json>|<open json>|<drain seconds>|<sustained msg/s>" for io-server.
run_io() {
    local port data pid base key closed drain sustained rate open started
    port=$(free_port)
    data="$work/io-$1"
    base="http://127.0.0.1:$port"
    IO_ADMIN_TOKEN=$ADMIN_TOKEN IO_WORKERS=1 IO_RATE_LIMIT__DEFAULT=unlimited \
        IO_MAX_BACKLOG=100000000 RUST_LOG=warn \
        $BIN/io-server serve --listen "127.0.0.1:$port" --data "$data" >"$work/io.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_for "$base/healthz"
    key=$(seed_io "$base")
    local url="$base/api/v1/messages/{fiscal_code}"
    # One message first: a setup mistake shows here as a status, not as a 0 msg/s figure.
    local probe
    probe=$($BIN/io-load --url "$url" --fiscal-codes "$work/codes" --header "Ocp-Apim-Subscription-Key: $key" \
        --connections 1 --duration 1 --rate 1 2>/dev/null)
    if [ "$(field "$probe" ok_2xx)" = 0 ]; then
        echo "io-server refused the probe message: $(field "$probe" non_2xx_by_status) $(field "$probe" errors_by_kind)" >&2
        return 1
    fi
    closed=$($BIN/io-load --url "$url" --fiscal-codes "$work/codes" --header "Ocp-Apim-Subscription-Key: $key" \
        --connections "$CONNECTIONS" --duration "$DURATION" 2>/dev/null)
    started=$(date +%s.%N)
    for _ in $(seq 1200); do
        [ "$(backlog "$base")" = 0 ] && break
        sleep 0.05
    done
    drain=$(python3 -c "import time; print(round(time.time() - $started, 3))")
    sustained=$(python3 -c "print(round($(field "$closed" ok_2xx) / ($(field "$closed" elapsed_s) + $drain), 1))")
    rate=$(python3 -c "print(max(1, round($sustained / 2)))")
    open=$($BIN/io-load --url "$url" --fiscal-codes "$work/codes" --header "Ocp-Apim-Subscription-Key: $key" \
        --connections "$CONNECTIONS" --duration "$HALF_DURATION" --rate "$rate" 2>/dev/null)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$closed|$open|$drain|$sustained"
}

results="$work/results"
for rep in $(seq "$REPS"); do
    echo "== rep $rep: reference server"
    echo "ref|$(run_reference "$rep")" >>"$results"
    echo "== rep $rep: io-server"
    echo "io|$(run_io "$rep")" >>"$results"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
reps = {"ref": [], "io": []}
for kind, closed, opened, drain, sustained in rows:
    closed, opened = json.loads(closed), json.loads(opened)
    reps[kind].append({
        "accept": closed["throughput_2xx_per_s"], "sustained": float(sustained),
        "drain": float(drain), "non2xx": closed["non_2xx"] + opened["non_2xx"],
        "errors": closed["errors"] + opened["errors"],
        "full_p99": closed["p99_ms"], "half_rate": opened["rate"],
        "half_p50": opened["p50_ms"], "half_p99": opened["p99_ms"],
        "unsent": opened["unsent"],
    })
print()
print("| rep | reference msg/s | reference p50/p99 at half (ms) | io accepted msg/s | io drain (s) | io sustained msg/s | io p50/p99 at half (ms) | ratio io/reference | non-2xx / errors |")
print("|---|---|---|---|---|---|---|---|---|")
ratios = []
for n, (ref, io) in enumerate(zip(reps["ref"], reps["io"]), 1):
    ratio = io["sustained"] / ref["sustained"] if ref["sustained"] else 0.0
    ratios.append(ratio)
    print(f"| {n} | {ref['sustained']:.0f} | {ref['half_p50']:.2f} / {ref['half_p99']:.2f} | {io['accept']:.0f} | {io['drain']:.2f} | {io['sustained']:.0f} | {io['half_p50']:.2f} / {io['half_p99']:.2f} | **{ratio:.2f}** | {ref['non2xx'] + io['non2xx']} / {ref['errors'] + io['errors']} |")
med = lambda kind, key: statistics.median(r[key] for r in reps[kind])
print(f"| median | {med('ref', 'sustained'):.0f} | {med('ref', 'half_p50'):.2f} / {med('ref', 'half_p99'):.2f} | {med('io', 'accept'):.0f} | {med('io', 'drain'):.2f} | {med('io', 'sustained'):.0f} | {med('io', 'half_p50'):.2f} / {med('io', 'half_p99'):.2f} | **{statistics.median(ratios):.2f}** | |")
unsent = sum(r["unsent"] for kind in reps for r in reps[kind])
if unsent:
    print(f"\nwarning: {unsent} half-load requests were scheduled but never sent (the server fell behind)")
PY
