#!/usr/bin/env bash
# Usage: scripts/dynamodb-local.sh scripts/measure-authorizer.sh   (what `make measure` runs)
#
# The authorizer's latency against a function doing one bare GetItem with the same SDK client,
# both real bootstrap binaries under tools/lambdarun, against DynamoDB Local, in one run:
#   first sight   each invocation presents a token the instance has not seen (40 tokens), against
#                 a bare GetItem; the usage writes go out once per interval per instance, in
#                 parallel with an invocation's read, and at SIGTERM (pkg/lambdaext), and the
#                 script checks that the uses were counted. With USAGE_WRITE_INTERVAL_SECONDS=0
#                 each invocation writes the previous one's use in parallel with its read, against
#                 a function doing the same (a GetItem, and the previous token's UpdateItem)
#   repeat miss   the same token again and again, memory cache off
#   init          cold start of the authorizer against the minimal aws-lambda-go function
# and prints each median and its ratio to the baseline. The configurations take turns, one cold
# start each per round (MEASURE_RUNS rounds), so that a machine whose load drifts slows them alike;
# the medians pool every round's warm invocations (all but each cold start's first). AWS_CA_BUNDLE
# is unset, as on Lambda.
set -euo pipefail
: "${DYNAMODB_ENDPOINT:?run me through scripts/dynamodb-local.sh}"
RUNS=${MEASURE_RUNS:-5}
TOKENS=${MEASURE_TOKENS:-40}
host=.build/host
flags=(-tags lambda.norpc -trimpath -ldflags "-s -w")
mkdir -p "$host"
for fn in authorizer; do CGO_ENABLED=0 go build "${flags[@]}" -o "$host/$fn/bootstrap" "./functions/$fn"; done
for fn in minimal getitem; do CGO_ENABLED=0 go build "${flags[@]}" -o "$host/$fn/bootstrap" "./tools/lambdarun/testdata/$fn"; done
go build -o "$host/lambdarun" ./tools/lambdarun
go build -o "$host/apitokens" ./cmd/apitokens

export AWS_ENDPOINT_URL_DYNAMODB=$DYNAMODB_ENDPOINT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export TABLE_NAME=apitokens-measure-$$ AUTHORIZER_ROLE=consumer
unset AWS_CA_BUNDLE AWS_PROFILE
"$host/apitokens" table create --table "$TABLE_NAME" >/dev/null 2>&1

events=$host/first-sight.jsonl
: > "$events"
for i in $(seq "$TOKENS"); do
	tok=$("$host/apitokens" create --store dynamodb --owner acme --name "measure $i" --permissions read | sed -n 's/^Token: //p')
	[ -n "$tok" ] || { echo "measure: apitokens create printed no token" >&2; exit 1; }
	sed "s/tok_live_REPLACE_WITH_A_TOKEN/$tok/g" events/authorizer-http-v2.json | tr -d '\n' >> "$events"
	echo >> "$events"
done
head -n 1 "$events" > "$host/repeat.json"

# sample NAME ARGS...: one cold start of the function; appends the Duration of its warm
# invocations (what the caller waits for) and its Init Duration, in ms, to $host/NAME.ms and .init.
sample() {
	local name=$1
	shift
	"$host/lambdarun" -runs 1 -name "$name" "$@" 2>&1 >/dev/null | grep '^REPORT ' > "$host/last.log"
	cat "$host/last.log" >> "$host/measure.log"
	{ grep -v 'Init Duration' "$host/last.log" || true; } | sed -n 's/.*	Duration: \([0-9.]*\) ms.*/\1/p' >> "$host/$name.ms"
	sed -n 's/.*	Init Duration: \([0-9.]*\) ms.*/\1/p' "$host/last.log" >> "$host/$name.init"
}
# median FILE: the median of the numbers in FILE (0 when it has none).
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
: > "$host/measure.log"
rm -f "$host"/*.ms "$host"/*.init

# pair A B: one cold start of each, in turns A B and B A from round to round, so that neither
# always follows the other (DynamoDB Local serves reads more slowly right after writes).
pair() {
	if [ $((round % 2)) = 1 ]; then eval "$1"; eval "$2"; else eval "$2"; eval "$1"; fi
}
for round in $(seq "$RUNS"); do
	pair 'sample authorizer-first-sight -events "$events" -n "$TOKENS" "$host/authorizer/bootstrap"' \
		'sample getitem-first-sight -events "$events" -n "$TOKENS" "$host/getitem/bootstrap"'
	pair 'sample authorizer-repeat-miss -env AUTH_CACHE_TTL_SECONDS=0 -event "$host/repeat.json" -n "$TOKENS" "$host/authorizer/bootstrap"' \
		'sample getitem-repeat -event "$host/repeat.json" -n "$TOKENS" "$host/getitem/bootstrap"'
	pair 'sample authorizer-init -event "$host/repeat.json" "$host/authorizer/bootstrap"' \
		'sample minimal-init -event "$host/repeat.json" "$host/minimal/bootstrap"'
	pair 'sample authorizer-write-each -env USAGE_WRITE_INTERVAL_SECONDS=0 -events "$events" -n "$TOKENS" "$host/authorizer/bootstrap"' \
		'sample getitem-write-after -env BASELINE_WRITE=after -events "$events" -n "$TOKENS" "$host/getitem/bootstrap"'
done

# Every authorizer invocation above (first sight, write each, repeat miss: TOKENS per round each;
# init: 1) is a use of a valid token, as counted in the table: those an instance still held at
# SIGTERM were written then, within Lambda's 500 ms (under heavy load some may not be: the loss the
# README states). More than invoked would be a bug.
counted=$("$host/apitokens" list --store dynamodb --owner acme --limit "$TOKENS" --json | grep -o '"usageCount": *[0-9]*' | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }')
invoked=$((RUNS * (3 * TOKENS + 1)))
if [ "$counted" -gt "$invoked" ] || [ "$counted" -eq 0 ]; then
	echo "measure: $counted uses counted for $invoked invocations" >&2
	exit 1
fi

first=$(median "$host/authorizer-first-sight.ms") first_base=$(median "$host/getitem-first-sight.ms")
every=$(median "$host/authorizer-write-each.ms") every_base=$(median "$host/getitem-write-after.ms")
repeat=$(median "$host/authorizer-repeat-miss.ms") repeat_base=$(median "$host/getitem-repeat.ms")
init_auth=$(median "$host/authorizer-init.init") init_min=$(median "$host/minimal-init.init")

printf '%-36s %9s %9s %7s %s\n' measure authorizer baseline ratio target
printf '%-36s %6s ms %6s ms %7s %s\n' "first sight (per call, median)" "$first" "$first_base" "$(ratio "$first" "$first_base")" "<= 1.15 x bare GetItem"
printf '%-36s %6s ms %6s ms %7s %s\n' "first sight, every use written" "$every" "$every_base" "$(ratio "$every" "$every_base")" "(vs GetItem with the last UpdateItem beside it)"
printf '%-36s %6s ms %6s ms %7s %s\n' "repeat miss, cache off (median)" "$repeat" "$repeat_base" "$(ratio "$repeat" "$repeat_base")" "<= 1.10 x bare GetItem"
printf '%-36s %6s ms %6s ms %7s %s\n' "init (median of $RUNS cold starts)" "$init_auth" "$init_min" "$(ratio "$init_auth" "$init_min")" "<= 1.5 x minimal function"
echo "usage counted in the table: $counted of $invoked authorizer invocations (the rest held at a SIGTERM that ran out of time)"
echo "(lambdarun REPORT lines: $host/measure.log)"
