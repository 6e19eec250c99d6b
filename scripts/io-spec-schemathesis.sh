#!/usr/bin/env bash
# Runs schemathesis with IO's own Services API document (Swagger 2.0, pagopa/io-functions-services
# openapi/index.yaml — not kept in this repository: pass its path) against io's /api/v1, to find
# where io answers differently from what IO documents. A manual check, not part of CI: failures
# are findings to read, some of them deliberate deviations (see tests/io_contract.rs).
#
#   scripts/io-spec-schemathesis.sh PATH/TO/io-functions-services/openapi/index.yaml
#
# Starts its own server (IO_SERVER_BIN, else the debug build, built if missing) on a free
# loopback port over a temporary data directory, and always stops it. Provisions the service
# tari-roma (SPECIAL, every group) with its key, a citizen with a profile, an activation and a
# message, and the manage key of the institution 02438750586. Operations under /manage and
# /messages-sending (IO's ManageSubscriptionKey ones) run with the manage key, the others with
# the service key.
# SCHEMATHESIS_EXAMPLES (default 20) bounds the generated requests per operation and phase;
# SCHEMATHESIS_SEED (default 1) picks them; SCHEMATHESIS_CHECKS overrides the checks (default:
# no 5xx, documented statuses, bodies matching IO's schemas; content_type_conformance is left
# out because every io error is application/problem+json, which IO documents as
# application/json, and that one finding would hide the others of each operation);
# SCHEMATHESIS_REPORT_DIR, if set, keeps schemathesis's JUnit and NDJSON reports there.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 PATH/TO/IO-SERVICES-SPEC.yaml" >&2
    exit 2
fi
spec="$(realpath "$1")"
cd "$(dirname "$0")/.."
started=$SECONDS
version=4.32.5
examples="${SCHEMATHESIS_EXAMPLES:-20}"
seed="${SCHEMATHESIS_SEED:-1}"
checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance}"
report_dir="${SCHEMATHESIS_REPORT_DIR:+$(realpath -m "$SCHEMATHESIS_REPORT_DIR")}"

if ! python3 -m schemathesis.cli --version 2>/dev/null | grep -q "$version"; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi

bin="${IO_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/io-server}"
[ -n "${IO_SERVER_BIN:-}" ] || cargo build -q -p io-server

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_token="io-spec-schemathesis-admin-token"
IO_ADMIN_TOKEN="$admin_token" IO_RATE_LIMIT__DEFAULT=unlimited IO_LOG=warn \
    "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
    curl -sf "$base/readyz" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$work/server.log"; echo "io-spec-schemathesis.sh: the server did not start"; exit 1; }
    sleep 0.1
done
curl -sf "$base/readyz" >/dev/null || { echo "io-spec-schemathesis.sh: the server is not ready after 10 s"; exit 1; }

# call METHOD PATH AUTH-HEADER [BODY]: the JSON answer, failing on an HTTP error.
call() {
    curl -sS --fail-with-body -X "$1" "$base$2" -H "$3" -H 'Content-Type: application/json' ${4:+--data "$4"}
}
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

citizen=RSSMRA85T10A562S
organization=02438750586
admin="Authorization: Bearer $admin_token"
groups='["ApiMessageWrite","ApiLimitedMessageWrite","ApiMessageRead","ApiLimitedProfileRead","ApiMessageWriteWithPayee","ApiMessageWriteAdvanced","ApiMessageReadAdvanced","ApiSubscriptionsFeedRead","ApiServiceWrite"]'
call POST /adm/services "$admin" "{\"service_id\":\"tari-roma\",\"service_name\":\"Tassa rifiuti\",\"department_name\":\"Tributi\",\"organization_name\":\"Comune di Roma\",\"organization_fiscal_code\":\"$organization\",\"max_allowed_payment_amount\":100000,\"service_metadata\":{\"scope\":\"NATIONAL\",\"category\":\"SPECIAL\"},\"groups\":$groups}" >/dev/null
call PUT /adm/activations "$admin" "{\"fiscal_code\":\"$citizen\",\"service_id\":\"tari-roma\",\"status\":\"ACTIVE\"}" >/dev/null
key="$(call GET /adm/services/tari-roma/keys "$admin" | field '["primary_key"]')"
token="$(call POST /adm/citizen-tokens "$admin" "{\"fiscal_code\":\"$citizen\"}" | field '["token"]')"
call POST /app/v1/profile "Authorization: Bearer $token" '{"is_inbox_enabled":true}' >/dev/null
call POST "/api/v1/messages/$citizen" "Ocp-Apim-Subscription-Key: $key" \
    '{"content":{"subject":"Avviso di pagamento TARI","markdown":"Gentile contribuente, le comunichiamo che è disponibile l'"'"'avviso di pagamento della tassa sui rifiuti per l'"'"'anno in corso."}}' >/dev/null
manage_key="$(call POST "/adm/organizations/$organization/manage-keys" "$admin" '{}' | field '["primary_key"]')"

manage_paths='^/(manage|messages-sending)/'
failed=()
# run NAME KEY FILTER...: schemathesis with IO's document, the operations FILTER selects.
run() {
    local name=$1 credential=$2
    shift 2
    echo "== schemathesis with IO's document: $name"
    local reports=()
    if [ -n "$report_dir" ]; then
        mkdir -p "$report_dir"
        reports=(--report junit,ndjson --report-dir "$report_dir"
            --report-junit-path "$report_dir/$name.xml" --report-ndjson-path "$report_dir/$name.ndjson")
    fi
    # From the work directory, so hypothesis's example database does not land in the repository.
    # One worker: see .ci/schemathesis.sh.
    if ! (cd "$work" && python3 -m schemathesis.cli run "$spec" \
        --url "$base/api/v1" --header "Ocp-Apim-Subscription-Key: $credential" "$@" \
        --checks "$checks" --max-examples "$examples" --seed "$seed" --workers 1 --no-color \
        "${reports[@]}"); then
        failed+=("$name")
    fi
}
run services "$key" --exclude-path-regex "$manage_paths"
run manage "$manage_key" --include-path-regex "$manage_paths"

if [ ${#failed[@]} -gt 0 ]; then
    tail -n 20 "$work/server.log"
    echo "io-spec-schemathesis.sh: findings in ${failed[*]} ($((SECONDS - started)) s)"
    exit 1
fi
echo "io-spec-schemathesis.sh: io conforms to IO's document ($((SECONDS - started)) s)"
