#!/usr/bin/env bash
# Property-based API testing of the non-FHIR routes with schemathesis, driven
# by the server's own OpenAPI document (GET /openapi.json).
#
#   BASE_URL=http://127.0.0.1:8080 TOKEN_FILE=cm.jwt scripts/schemathesis.sh
#   scripts/schemathesis.sh http://127.0.0.1:8080            (TOKEN or TOKEN_FILE in the environment)
#
# BASE_URL    the server's origin (or the first argument)
# TOKEN       a bearer token for role cm (npm run token -- --role cm --facility sbx),
#             or TOKEN_FILE: a file holding it
# MAX_EXAMPLES  test cases per operation (default 20)
# MAX_TIME      seconds for the whole run (default 90)
# SEED          a seed to reproduce a run
# Any further arguments are passed to `schemathesis run`.
# `scripts/schemathesis.sh --install` only installs schemathesis (if needed) and exits.
#
# schemathesis is installed on first use into .cache/schemathesis-venv
# (SCHEMATHESIS_VENV to override), pinned to SCHEMATHESIS_VERSION.
# Exit: schemathesis's own (0 = all checks passed); 3 when it cannot be installed.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SCHEMATHESIS_VENV:-$ROOT/.cache/schemathesis-venv}"


installed_version() { "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true; }

if [ "$(installed_version)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "schemathesis.sh: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV" >&2
  PYTHON="${PYTHON:-python3}"
  if ! command -v "$PYTHON" >/dev/null; then echo "schemathesis.sh: $PYTHON not found; schemathesis needs Python >= 3.9" >&2; exit 3; fi
  if [ ! -x "$VENV/bin/pip" ]; then
    rm -rf "$VENV"
    if ! out="$("$PYTHON" -m venv "$VENV" 2>&1)"; then echo "schemathesis.sh: '$PYTHON -m venv' failed:" >&2; echo "$out" >&2; exit 3; fi
  fi
  if ! out="$("$VENV/bin/pip" install --disable-pip-version-check -q "schemathesis==$SCHEMATHESIS_VERSION" 2>&1)"; then
    echo "schemathesis.sh: pip could not install schemathesis==$SCHEMATHESIS_VERSION:" >&2; echo "$out" >&2; exit 3
  fi
fi

if [ "${1:-}" = "--install" ]; then echo "schemathesis.sh: schemathesis $(installed_version) in $VENV"; exit 0; fi

BASE_URL="${1:-${BASE_URL:-}}"
[ $# -gt 0 ] && shift
if [ -z "$BASE_URL" ]; then echo "schemathesis.sh: BASE_URL is required (environment or first argument)" >&2; exit 2; fi
BASE_URL="${BASE_URL%/}"
if [ -z "${TOKEN:-}" ] && [ -n "${TOKEN_FILE:-}" ]; then TOKEN="$(tr -d ' \r\n' < "$TOKEN_FILE")"; fi
if [ -z "${TOKEN:-}" ]; then echo "schemathesis.sh: TOKEN or TOKEN_FILE is required (a role cm bearer token)" >&2; exit 2; fi

args=(
  run "$BASE_URL/openapi.json"
  --checks not_a_server_error,response_schema_conformance
  --header "Authorization: Bearer $TOKEN"
  --max-examples "${MAX_EXAMPLES:-20}"
  --max-time "${MAX_TIME:-90}"
  --request-timeout 15
  --wait-for-schema 30
  --generation-database none
  --no-color
)
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")

cd "$ROOT/.cache" 2>/dev/null || cd "$ROOT"
exec "$VENV/bin/schemathesis" "${args[@]}" "$@"
