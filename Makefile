# make test: install what is missing (redis-server from the OS packages),
# then vet and run every test under the race detector.
GO ?= go

.PHONY: test deps vet bench fuzz

test: deps vet
	$(GO) test -race -count=1 -timeout 300s ./...

deps:
	@./scripts/ensure-redis.sh

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt: these files need formatting:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./sequencer/
