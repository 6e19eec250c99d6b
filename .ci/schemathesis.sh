#!/usr/bin/env bash
# Checks the running server against its own OpenAPI documents (/api/v1, /app/v1, /adm) with
# schemathesis: generated valid and invalid requests must get no 5xx, only documented statuses,
# content types and headers, and bodies that match the response schemas. Starts its own server
# on a free loopback port over a temporary data directory and always stops it.
# SCHEMATHESIS_EXAMPLES (default 50) bounds the generated requests per operation and phase;
# SCHEMATHESIS_SEED (default 1) picks them, the same on every run unless changed.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
version=4.32.5
examples="${SCHEMATHESIS_EXAMPLES:-50}"
seed="${SCHEMATHESIS_SEED:-1}"

if ! python3 -m schemathesis.cli --version 2>/dev/null | grep -q "$version"; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi

bin="${IO_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/io-server}"
[ -n "${IO_SERVER_BIN:-}" ] || cargo build -q -p io-server

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_token="schemathesis-admin-token"
IO_ADMIN_TOKEN="$admin_token" IO_RATE_LIMIT__DEFAULT=unlimited IO_LOG=warn \
    "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
    curl -sf "$base/readyz" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$work/server.log"; echo "schemathesis.sh: the server did not start"; exit 1; }
    sleep 0.1
done
curl -sf "$base/readyz" >/dev/null || { echo "schemathesis.sh: the server is not ready after 10 s"; exit 1; }

# call METHOD PATH AUTH-HEADER [BODY]: the JSON answer, failing on an HTTP error.
call() {
    curl -sS --fail-with-body -X "$1" "$base$2" -H "$3" -H 'Content-Type: application/json' ${4:+--data "$4"}
}
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# The fixtures the documents' examples name: the service tari-roma (SPECIAL, so that the
# activation routes answer too) with every group, and the citizen RSSMRA85T10A562S with a
# profile, an activation of tari-roma and one message in the inbox.
citizen=RSSMRA85T10A562S
admin="Authorization: Bearer $admin_token"
groups='["ApiMessageWrite","ApiLimitedMessageWrite","ApiMessageRead","ApiLimitedProfileRead","ApiMessageWriteWithPayee","ApiMessageWriteAdvanced","ApiMessageReadAdvanced","ApiSubscriptionsFeedRead","ApiServiceWrite"]'
call POST /adm/services "$admin" "{\"service_id\":\"tari-roma\",\"service_name\":\"Tassa rifiuti\",\"department_name\":\"Tributi\",\"organization_name\":\"Comune di Roma\",\"organization_fiscal_code\":\"02438750586\",\"max_allowed_payment_amount\":100000,\"service_metadata\":{\"scope\":\"NATIONAL\",\"category\":\"SPECIAL\"},\"groups\":$groups}" >/dev/null
call PUT /adm/activations "$admin" "{\"fiscal_code\":\"$citizen\",\"service_id\":\"tari-roma\",\"status\":\"ACTIVE\"}" >/dev/null
key="$(call GET /adm/services/tari-roma/keys "$admin" | field '["primary_key"]')"
token="$(call POST /adm/citizen-tokens "$admin" "{\"fiscal_code\":\"$citizen\"}" | field '["token"]')"
call POST /app/v1/profile "Authorization: Bearer $token" '{"is_inbox_enabled":true}' >/dev/null
call POST "/api/v1/messages/$citizen" "Ocp-Apim-Subscription-Key: $key" \
    '{"content":{"subject":"Avviso di pagamento TARI","markdown":"Gentile contribuente, le comunichiamo che è disponibile l'"'"'avviso di pagamento della tassa sui rifiuti per l'"'"'anno in corso."}}' >/dev/null

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth,unsupported_method
failed=()
# run NAME BASE-PATH AUTH-HEADER: schemathesis against one API's document.
run() {
    echo "== schemathesis: $1 ($2)"
    # From the work directory, so hypothesis's example database does not land in the repository.
    # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11.7 cannot run
    # in two threads at once ("AST constructor recursion depth mismatch").
    if ! (cd "$work" && python3 -m schemathesis.cli run "$base$2/openapi.json" \
        --url "$base$2" --header "$3" --checks "$checks" \
        --max-examples "$examples" --seed "$seed" --workers 1 --no-color); then
        failed+=("$1")
    fi
}
run services /api/v1 "Ocp-Apim-Subscription-Key: $key"
run citizen /app/v1 "Authorization: Bearer $token"
# Last: the admin run may rewrite tari-roma (groups, authorized_cidrs) the other runs rely on.
run admin /adm "$admin"

if [ ${#failed[@]} -gt 0 ]; then
    tail -n 20 "$work/server.log"
    echo "schemathesis.sh: failures in ${failed[*]} ($((SECONDS - started)) s)"
    exit 1
fi
echo "schemathesis.sh: /api/v1, /app/v1 and /adm conform to their OpenAPI documents ($((SECONDS - started)) s)"
