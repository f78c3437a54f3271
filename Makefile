# apitokens: `make run` serves the API locally; `make test` runs every test.
# Everything it needs beyond Go, Java, Node/npm and cfn-lint installs into .tools/ (git-ignored).

GO        ?= go
ADDR      ?= 127.0.0.1:8080
FUZZTIME  ?= 5s
BENCHTIME ?= 1s

.PHONY: run test prerequisites check-format vet unit race fuzz bench

run:
	$(GO) run ./cmd/apitokens serve --addr $(ADDR)

test: prerequisites check-format vet unit race fuzz cfn-lint

# Every tool make test needs, checked first, with one install hint each.
prerequisites:
	@scripts/prerequisites.sh

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Every package's tests; the DynamoDB store runs against DynamoDB Local, started and stopped here.
unit:
	scripts/dynamodb-local.sh $(GO) test -count=1 ./...

# The race detector on the packages with caches, counters and goroutines: the authorizer (cache,
# usage writes in flight), the stores, the service, the HTTP API and the sign-in's key cache.
race:
	scripts/dynamodb-local.sh $(GO) test -race -count=1 ./pkg/authorizer/ ./pkg/memstore/ ./pkg/token/... ./pkg/httpapi/ ./pkg/dynamo/ ./pkg/oidc/

fuzz:
	$(GO) test ./pkg/token -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

bench:
	$(GO) test ./pkg/token ./pkg/httpapi -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME)

# ---- Lambda functions: build, sam build, make invoke, template checks --------------------------

# The functions of template.yaml: LogicalId:directory under functions/.
LAMBDA_FUNCTIONS := CreateFunction:create ListFunction:list SelfFunction:self GetFunction:get \
	UpdateFunction:update RevokeFunction:revoke RotateFunction:rotate UsageFunction:usage VerifyFunction:verify \
	AuditFunction:audit OpenapiFunction:openapi MeFunction:me DashboardFunction:dashboard \
	ManagementAuthorizerFunction:authorizer ExampleWhoamiFunction:example-whoami \
	LeaksFunction:leaks RevokeByTokenFunction:revoke-by-token QuotaEventsFunction:quota-events ExpiryRemindersFunction:expiry-reminders
# The function of the consumer authorizer application, authorizer/template.yaml (its CodeUri is
# this directory, so sam build runs this Makefile for it too, also as a nested application).
AUTHORIZER_APP_FUNCTIONS := AuthorizerFunction:authorizer
# Each directory once: both authorizers are functions/authorizer.
LAMBDA_DIRS := $(sort $(foreach f,$(LAMBDA_FUNCTIONS) $(AUTHORIZER_APP_FUNCTIONS),$(word 2,$(subst :, ,$(f)))))
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
# Lambda's provided.al2023 on arm64 (Graviton), as template.yaml declares.
LAMBDA_GOBUILD := GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_GOFLAGS)
BUILD_DIR      := .build
FUNCTION       ?=
EVENT          ?=
N              ?= 1
RUNS           ?= 1

.PHONY: build invoke cfn-lint measure measure-in-dynamodb-local

# make build: every function as bootstrap for Lambda, zipped as Lambda takes it, with sizes.
# No sam needed: .build/lambda/<dir>.zip can be uploaded as is.
build:
	@set -e; mkdir -p $(BUILD_DIR)/lambda; \
	printf '%-16s %12s %12s\n' function unzipped zipped; \
	for dir in $(LAMBDA_DIRS); do \
		out=$(BUILD_DIR)/lambda/$$dir; \
		$(LAMBDA_GOBUILD) -o $$out/bootstrap ./functions/$$dir; \
		rm -f $$out.zip; \
		if command -v zip >/dev/null 2>&1; then (cd $$out && zip -q -X ../$$dir.zip bootstrap); \
		else (cd $$out && python3 -m zipfile -c ../$$dir.zip bootstrap); fi; \
		raw=$$(wc -c < $$out/bootstrap); zipped=$$(wc -c < $$out.zip); \
		over=""; [ $$raw -le 10485760 ] || over="  over the 10 MiB target"; \
		awk -v f=$$dir -v r=$$raw -v z=$$zipped -v o="$$over" 'BEGIN { printf "%-16s %9.2f MiB %9.2f MiB%s\n", f, r/1048576, z/1048576, o }'; \
	done

# sam build (BuildMethod: makefile) runs build-<LogicalId> with ARTIFACTS_DIR set, several at
# once (parallel = true): each target writes only to its own ARTIFACTS_DIR, since two functions
# (the management and the consumer authorizer) build the same directory.
define lambda_build_target
.PHONY: build-$(1)
build-$(1):
	@test -n "$$(ARTIFACTS_DIR)" || { echo "build-$(1) is for sam build, which sets ARTIFACTS_DIR; use make build" >&2; exit 2; }
	$$(LAMBDA_GOBUILD) -o "$$(ARTIFACTS_DIR)/bootstrap" ./functions/$(2)
endef
$(foreach f,$(LAMBDA_FUNCTIONS) $(AUTHORIZER_APP_FUNCTIONS),$(eval $(call lambda_build_target,$(word 1,$(subst :, ,$(f))),$(word 2,$(subst :, ,$(f))))))

# make invoke FUNCTION=create EVENT=events/create.json [N=3] [RUNS=1]: sam local invoke without
# Docker (scripts/invoke.sh): builds functions/$(FUNCTION) for this machine and runs the real
# bootstrap under tools/lambdarun (the Lambda Runtime API); the response goes to stdout, logs and
# durations to stderr. Without TABLE_NAME, against DynamoDB Local (started unless DYNAMODB_ENDPOINT
# names one) with a table holding the tokens the event names; with TABLE_NAME, against that table
# with this environment as it is. The authorizer needs AUTHORIZER_ROLE.
invoke:
	@GO="$(GO)" scripts/invoke.sh "$(FUNCTION)" "$(EVENT)" -n $(N) -runs $(RUNS)

# cfn-lint validates template.yaml and the consumer authorizer application, SAM transform
# included; part of make test. internal/samtest also runs the SAM translator on both and on the
# README's attach snippets, and checks the authorizers API Gateway gets.
cfn-lint:
	@command -v cfn-lint >/dev/null 2>&1 || { echo "cfn-lint not found: install it with pip install cfn-lint" >&2; exit 1; }
	cfn-lint template.yaml authorizer/template.yaml

# make measure: init and invoke durations under lambdarun of a minimal aws-lambda-go function
# and of apitokens' functions, against DynamoDB Local (MEASURE_RUNS cold starts of
# MEASURE_N invocations each), after the sizes of make build. The authorizer runs in both roles:
# management (no memory cache: every call reads the table) and consumer (cached, and uncached);
# then scripts/measure-authorizer.sh prints its first-sight, repeat-miss and init ratios to a
# bare GetItem and to the minimal function, and the hot-token scenario prints lease writes per
# item per second and admitted/limit. AWS_CA_BUNDLE is unset as on Lambda: the SDK parses
# that bundle at every config load (milliseconds of init).
MEASURE_RUNS ?= 10
MEASURE_N    ?= 20
measure: build
	scripts/dynamodb-local.sh $(MAKE) --no-print-directory measure-in-dynamodb-local

measure-in-dynamodb-local:
	@test -n "$$DYNAMODB_ENDPOINT" || { echo "run make measure" >&2; exit 2; }
	@set -e; host=$(BUILD_DIR)/host; \
	for fn in authorizer create list; do CGO_ENABLED=0 $(GO) build $(LAMBDA_GOFLAGS) -o $$host/$$fn/bootstrap ./functions/$$fn; done; \
	CGO_ENABLED=0 $(GO) build $(LAMBDA_GOFLAGS) -o $$host/minimal/bootstrap ./tools/lambdarun/testdata/minimal; \
	$(GO) build -o $$host/lambdarun ./tools/lambdarun; \
	$(GO) build -o $$host/apitokens ./cmd/apitokens; \
	export AWS_ENDPOINT_URL_DYNAMODB=$$DYNAMODB_ENDPOINT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local TABLE_NAME=apitokens-measure; \
	unset AWS_CA_BUNDLE AWS_PROFILE; \
	$$host/apitokens table create --table $$TABLE_NAME 2>/dev/null; \
	tok=$$($$host/apitokens create --store dynamodb --owner acme --name measure --permissions manage | sed -n 's/^Token: //p'); \
	test -n "$$tok" || { echo "measure: apitokens create printed no token" >&2; exit 1; }; \
	sed "s/tok_live_REPLACE_WITH_A_TOKEN/$$tok/g" events/authorizer-http-v2.json > $$host/authorizer-event.json; \
	run() { $$host/lambdarun -runs $(MEASURE_RUNS) -n $(MEASURE_N) "$$@" 2>&1 >/dev/null | grep '^lambdarun: '; }; \
	run -event events/create.json -name minimal $$host/minimal/bootstrap; \
	run -event $$host/authorizer-event.json -name authorizer-management -env AUTHORIZER_ROLE=management $$host/authorizer/bootstrap; \
	run -event $$host/authorizer-event.json -name authorizer-consumer -env AUTHORIZER_ROLE=consumer $$host/authorizer/bootstrap; \
	run -event $$host/authorizer-event.json -name authorizer-consumer-uncached -env AUTHORIZER_ROLE=consumer -env AUTH_CACHE_TTL_SECONDS=0 $$host/authorizer/bootstrap; \
	run -event events/create.json $$host/create/bootstrap; \
	run -event events/list.json $$host/list/bootstrap
	@MEASURE_RUNS=$(MEASURE_RUNS) scripts/measure-authorizer.sh
	@# Issue 14's hot token: 20 instances on DynamoDB Local, writes per item per simulated second
	@# counted by an SDK middleware, admitted against the limit (pkg/dynamo TestHotToken).
	@out=$$($(GO) test -count=1 ./pkg/dynamo/ -run '^TestHotToken$$' -v) || { echo "$$out"; exit 1; }; \
	echo "$$out" | grep '^hot '

