#!/usr/bin/env bash
# Usage: scripts/dynamodb-local.sh scripts/measure-authorizer.sh   (what `make measure` runs)
#
# The authorizer's latency against a function doing one bare GetItem with the same SDK client,
# both real bootstrap binaries under tools/lambdarun, against DynamoDB Local, in one run:
#   first sight   each invocation presents a token the instance has not seen (40 tokens), against
#                 a bare GetItem; the usage writes go out after a response, once per interval per
#                 instance and at SIGTERM (pkg/lambdaext), and the script checks that every use
#                 was counted. With USAGE_WRITE_INTERVAL_SECONDS=0 every response is followed by
#                 its write, against a function doing a GetItem and then, after its response, the
#                 same UpdateItem (the same I/O in the same order)
#   repeat miss   the same token again and again, memory cache off
#   init          cold start of the authorizer against the minimal aws-lambda-go function
# and prints each median and its ratio to the baseline. AWS_CA_BUNDLE is unset, as on Lambda.
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

# warm NAME ARGS...: the median of the warm invocations (all but each run's first), in ms.
warm() {
	local name=$1
	shift
	"$host/lambdarun" -runs "$RUNS" -name "$name" "$@" 2>&1 >/dev/null | grep '^lambdarun: ' | tee -a "$host/measure.log" |
		sed -n 's/.*warm invoke median \([0-9.]*\) ms.*/\1/p'
}
# init NAME ARGS...: the median init duration, in ms.
init() {
	local name=$1
	shift
	"$host/lambdarun" -runs "$RUNS" -n 1 -name "$name" "$@" 2>&1 >/dev/null | grep '^lambdarun: ' | tee -a "$host/measure.log" |
		sed -n 's/.*init median \([0-9.]*\) ms.*/\1/p'
}
# post NAME: the median post-response duration of a measured function, in ms (0 without one).
post() { grep "^lambdarun: $1: " "$host/measure.log" | sed -n 's/.*warm post-response median \([0-9.]*\) ms.*/\1/p' | grep . || echo 0; }
sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
: > "$host/measure.log"

first=$(warm authorizer-first-sight -events "$events" -n "$TOKENS" "$host/authorizer/bootstrap")
first_base=$(warm getitem-first-sight -events "$events" -n "$TOKENS" "$host/getitem/bootstrap")
every=$(warm authorizer-first-sight-write-each -env USAGE_WRITE_INTERVAL_SECONDS=0 -events "$events" -n "$TOKENS" "$host/authorizer/bootstrap")
every_base=$(warm getitem-write-after-first-sight -env BASELINE_WRITE=after -events "$events" -n "$TOKENS" "$host/getitem/bootstrap")
# Every use of the two authorizer runs above was counted: RUNS cold starts x 2 runs per token.
counted=$("$host/apitokens" list --store dynamodb --owner acme --limit "$TOKENS" --json | grep -o '"usageCount": *[0-9]*' | tr -d ' ' | sort | uniq -c | tr -s ' ')
want="$TOKENS \"usageCount\":$((2 * RUNS))"
if [ "$(echo "$counted" | sed 's/^ //')" != "$want" ]; then
	echo "measure: usage counts after the first-sight runs: $counted; want $want" >&2
	exit 1
fi
repeat=$(warm authorizer-repeat-miss -env AUTH_CACHE_TTL_SECONDS=0 -event "$host/repeat.json" -n "$TOKENS" "$host/authorizer/bootstrap")
repeat_base=$(warm getitem-repeat -event "$host/repeat.json" -n "$TOKENS" "$host/getitem/bootstrap")
init_auth=$(init authorizer-init -event "$host/repeat.json" "$host/authorizer/bootstrap")
init_min=$(init minimal-init -event "$host/repeat.json" "$host/minimal/bootstrap")

printf '%-34s %9s %9s %7s %s\n' measure authorizer baseline ratio target
printf '%-34s %6s ms %6s ms %7s %s\n' "first sight (per call, median)" "$first" "$first_base" "$(ratio "$first" "$first_base")" "<= 1.15 x bare GetItem"
printf '%-34s %6s ms %6s ms %7s %s\n' "first sight, every use written" "$every" "$every_base" "$(ratio "$every" "$every_base")" "(vs GetItem, then UpdateItem after the response)"
every_busy=$(sum "$every" "$(post authorizer-first-sight-write-each)")
every_base_busy=$(sum "$every_base" "$(post getitem-write-after-first-sight)")
printf '%-34s %6s ms %6s ms %7s %s\n' " ... response + post-response" "$every_busy" "$every_base_busy" "$(ratio "$every_busy" "$every_base_busy")" "(the instance busy, billed)"
echo "usage counted after SIGTERM: $TOKENS tokens x $((2 * RUNS)) uses, as invoked"
printf '%-34s %6s ms %6s ms %7s %s\n' "repeat miss, cache off (median)" "$repeat" "$repeat_base" "$(ratio "$repeat" "$repeat_base")" "<= 1.10 x bare GetItem"
printf '%-34s %6s ms %6s ms %7s %s\n' "init (median of $RUNS cold starts)" "$init_auth" "$init_min" "$(ratio "$init_auth" "$init_min")" "<= 1.5 x minimal function"
echo "(lambdarun summaries: $host/measure.log)"
