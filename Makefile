# ferry: `make run` and `make test` set up everything on a fresh Debian machine.
SWIFT      ?= swift
BIN        := .build/debug
FERRY      := $(BIN)/ferry
SANDBOX    := $(BIN)/ferry-sandbox
N          ?= 1500000

.PHONY: deps build run test bench fixtures fuzz clean

# Installs the Debian packages ferry needs with apt-get (apt-get update once, then apt-get install),
# only when some are missing; as root, or through sudo. The list is in scripts/install-deps.sh.
deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

run: build
	@scripts/run-demo.sh

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: deps
	$(SWIFT) build -c release
	@python3 scripts/bench.py

# libFuzzer over the config loader, CSV reader, JSON Lines profile reader and cron parser (Fuzz/README.md);
# FUZZ_SECONDS per target. Not part of `make test`, which replays the committed corpora instead.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config csv jsonl cron
fuzz: deps
	$(SWIFT) build -c release --package-path Fuzz --scratch-path .build-fuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fixtures: build
	mkdir -p Fixtures/generated
	$(SANDBOX) generate profiles --count $(N) --seed 1 > Fixtures/generated/profiles-$(N).jsonl

clean:
	rm -rf .build ferry.sqlite ferry.sqlite-*
