# apitokens: `make run` serves the API locally; `make test` runs every test.
# Everything it needs beyond Go, Java, Node/npm and cfn-lint installs into .tools/ (git-ignored).

GO        ?= go
ADDR      ?= 127.0.0.1:8080
FUZZTIME  ?= 5s
BENCHTIME ?= 1s

.PHONY: run test check-format vet unit fuzz bench

run:
	$(GO) run ./cmd/apitokens serve --addr $(ADDR)

test: check-format vet unit fuzz

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Every package's tests; the DynamoDB store runs against DynamoDB Local, started and stopped here.
unit:
	scripts/dynamodb-local.sh $(GO) test -count=1 ./...

fuzz:
	$(GO) test ./pkg/token -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

bench:
	$(GO) test ./pkg/token ./pkg/httpapi -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME)
