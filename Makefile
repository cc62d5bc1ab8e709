# The ledger's everyday commands. `make run` and `make test` work on a fresh machine: when no
# DATABASE_URL / TEST_DATABASE_URL is set and nothing answers on 127.0.0.1:5432, they start a
# private Postgres cluster under ./.data/ (installing Debian's postgresql package if needed).

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 20000x
BENCHCOUNT ?= 6
STATICCHECK_VERSION ?= v0.8.2
BENCHSTAT_VERSION   ?= v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: run test bench lint fuzz build chaos clean-data

## run: the ledger on its embedded default database (Ctrl-C stops it); SCENARIO=name plays
## another of the simulator's scenarios (`ledger dev --help` lists them)
run:
	$(GO) run ./cmd/ledger dev $(if $(SCENARIO),--sim-scenario $(SCENARIO))

## build: the ledger binary in ./bin
build:
	$(GO) build -o bin/ledger ./cmd/ledger

## test: every test against a real Postgres
test:
	$(GO) test -count=1 -race -timeout 9m $(PKGS)

## bench: the benchmarks, $(BENCHCOUNT) runs each, summarised as medians by benchstat, then the
## one table of every target (also kept in .data/bench-table.md)
bench:
	@mkdir -p .data
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 30m $(PKGS) | tee .data/bench.txt
	@echo
	@echo "== medians of $(BENCHCOUNT) runs ($$(nproc) cores) =="
	@$(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION) .data/bench.txt
	@$(GO) run ./cmd/benchtable .data/bench.txt | tee .data/bench-table.md

## lint: go vet and staticcheck
lint:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

## fuzz: every fuzz target in the repository for FUZZTIME each (their seed corpora also run in
## `make test`); scripts/fuzz finds them with `go test -list`
FUZZTIME ?= 30s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz

## chaos: the fault harness (SIGKILLs, lock-holder takeover, a Postgres restart) on a private
## cluster under .data/chaos; CHAOS_FLAGS passes options (go run ./cmd/chaos -h lists them)
CHAOS_FLAGS ?=
chaos: build
	$(GO) run ./cmd/chaos --ledger bin/ledger $(CHAOS_FLAGS)

## clean-data: stop the private clusters and delete ./.data
clean-data:
	-$(GO) run ./cmd/ledger db stop
	-$(GO) run ./cmd/ledger db stop --data-dir .data/test-pg
	rm -rf .data
