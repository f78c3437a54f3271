#!/usr/bin/env bash
# Usage: scripts/invoke.sh FUNCTION EVENT [lambdarun flags...]   (what make invoke runs)
#
# sam local invoke without Docker: builds functions/FUNCTION for this machine and runs the real
# bootstrap under tools/lambdarun (the Lambda Runtime API) on EVENT; the response goes to stdout,
# logs and durations to stderr.
#
# Without TABLE_NAME, the function runs against DynamoDB Local: the one DYNAMODB_ENDPOINT names
# (scripts/dynamodb-local.sh sets it), else one started for this invocation and stopped after it
# (about 4 s). A table of its own is created there with the tokens the event names
# (tools/seedevent): the caller of its authorizer context, the token its path names, the token a
# verify body presents, and a token in place of the authorizer events' placeholder.
#
# With TABLE_NAME, the function runs against that table with this environment as it is (AWS_REGION,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_DYNAMODB, ...),
# nothing is created, and an authorizer event's placeholder is replaced by TOKEN.
#
# The authorizer needs AUTHORIZER_ROLE (management or consumer) either way. Missing variables are
# named in one error, before anything is built or started.
set -euo pipefail

if [ "$#" -lt 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
	echo "usage: make invoke FUNCTION=<dir under functions/> EVENT=events/<file>.json [N=invocations] [RUNS=cold starts]" >&2
	exit 2
fi
fn=$1 event=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
placeholder=tok_live_REPLACE_WITH_A_TOKEN
host=.build/host

[ -f "functions/$fn/main.go" ] || { echo "no function functions/$fn" >&2; exit 2; }
[ -f "$event" ] || { echo "no event file $event" >&2; exit 2; }

# example-whoami reads neither a table nor any variable: it runs as it is.
table=1
[ "$fn" = example-whoami ] && table=""

missing=() why=()
need() { missing+=("$1"); why+=("  $1: $2"); }
if [ "$fn" = authorizer ] && [ -z "${AUTHORIZER_ROLE:-}" ]; then
	need AUTHORIZER_ROLE "management (apitokens' own API, template.yaml) or consumer (another API, authorizer/template.yaml)"
fi
if [ -n "$table" ] && [ -n "${TABLE_NAME:-}" ]; then
	# The functions build their DynamoDB client from these variables alone (dynamo.NewEnvClient):
	# no profile, no shared files.
	[ -n "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ] || need AWS_REGION "the region of table $TABLE_NAME"
	[ -n "${AWS_ACCESS_KEY_ID:-}" ] || need AWS_ACCESS_KEY_ID "credentials, as Lambda passes them (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
	[ -n "${AWS_SECRET_ACCESS_KEY:-}" ] || need AWS_SECRET_ACCESS_KEY "credentials, as Lambda passes them (with AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN)"
	if grep -q "$placeholder" "$event"; then
		[ -n "${TOKEN:-}" ] || need TOKEN "a token of table $TABLE_NAME, presented in place of $placeholder"
	fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
	{
		names=$(printf ', %s' "${missing[@]}")
		echo "make invoke FUNCTION=$fn: set ${names#, }"
		printf '%s\n' "${why[@]}"
		if [ -n "$table" ] && [ -n "${TABLE_NAME:-}" ]; then
			echo "TABLE_NAME is set, so the function runs against that table with this environment as it is;"
			echo "with an AWS profile: eval \"\$(aws configure export-credentials --format env)\". Or unset"
			echo "TABLE_NAME: the function then runs against DynamoDB Local, with the tokens the event names."
		fi
	} >&2
	exit 2
fi

if [ -n "$table" ] && [ -z "${TABLE_NAME:-}" ] && [ -z "${DYNAMODB_ENDPOINT:-}" ]; then
	exec scripts/dynamodb-local.sh "$root/scripts/invoke.sh" "$fn" "$event" "$@"
fi

mkdir -p "$host/$fn"
CGO_ENABLED=0 "$GO" build -tags lambda.norpc -trimpath -ldflags "-s -w" -o "$host/$fn/bootstrap" "./functions/$fn"
"$GO" build -o "$host/lambdarun" ./tools/lambdarun
# The event as run: it may hold a token (TOKEN, or the one seeded in place of the placeholder).
run=$(mktemp "${TMPDIR:-/tmp}/invoke-event.XXXXXX")
trap 'rm -f "$run"' EXIT

if [ -n "$table" ] && [ -z "${TABLE_NAME:-}" ]; then
	# DynamoDB Local: fixed local credentials, a table of this invocation's own.
	export AWS_ENDPOINT_URL_DYNAMODB=$DYNAMODB_ENDPOINT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
	export TABLE_NAME=apitokens-invoke-$(date +%s)-$$
	unset AWS_SESSION_TOKEN AWS_DEFAULT_REGION
	"$GO" build -o "$host/seedevent" ./tools/seedevent
	"$host/seedevent" -event "$event" -out "$run"
elif grep -q "$placeholder" "$event"; then
	sed "s/$placeholder/${TOKEN:-$placeholder}/g" "$event" >"$run"
else
	cp "$event" "$run"
fi
status=0
"$host/lambdarun" -event "$run" "$@" "$host/$fn/bootstrap" || status=$?
exit "$status"
