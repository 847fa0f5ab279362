# quantpack build. Every setup step lives here, so a fresh machine needs only
# Go (with cgo), npm and these targets. `make test` is what CI runs.

GO        ?= go
BIN       := bin/quantpack
ORT_VER   := 1.30.0
ORT_DIR   := third_party/ort
ORT_LIB   := $(ORT_DIR)/libonnxruntime.so.1
# sha256 of package/bin/napi-v6/linux/x64/libonnxruntime.so.1 in onnxruntime-node-$(ORT_VER)
ORT_SHA   := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
FUZZTIME  ?= 30s
DEMO_DIR  ?= demo-out

export ONNXRUNTIME_SHARED_LIBRARY_PATH ?= $(CURDIR)/$(ORT_LIB)

.PHONY: all build test test-short demo bench fuzz fuzz-short ort vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/quantpack

# ort fetches ONNX Runtime's CPU shared library from the onnxruntime-node npm
# package with `npm pack` (never `npm install`: its install script reaches for
# servers we cannot reach), checks its sha256 and keeps it in a git-ignored
# folder. Idempotent: does nothing when the checked file is already there.
ort: $(ORT_LIB)

$(ORT_LIB):
	@mkdir -p $(ORT_DIR)/tmp
	cd $(ORT_DIR)/tmp && npm pack --silent onnxruntime-node@$(ORT_VER) >/dev/null
	tar -xzf $(ORT_DIR)/tmp/onnxruntime-node-$(ORT_VER).tgz -C $(ORT_DIR)/tmp package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	echo "$(ORT_SHA)  $(ORT_DIR)/tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --quiet
	mv $(ORT_DIR)/tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $(ORT_LIB)
	rm -rf $(ORT_DIR)/tmp

# STATICCHECK is pinned; `go run pkg@version` builds it once into the Go
# build cache (the first run takes minutes on a small machine).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# RACE_PKGS run whole under -race -short: everything with goroutines of its
# own except the packages below, whose full suites are too slow under the
# race detector on 2 cores (formats/bundle 6 min; convert, cmd/quantpack and
# verify/ort spend their time in ONNX Runtime and in exports, not in Go
# concurrency). Their concurrent paths run by name in RACE_SELECTED.
RACE_PKGS     := ./formats/onnx ./formats/safetensors ./quant ./internal/... ./verify ./study
RACE_CONVERT  := TestConvertDeterministic|TestConvertCancelLeavesNothing|TestHashSourcesCancel|TestSynth
RACE_BUNDLE   := TestUnpackCancelled|TestPackProgress

# vet: go vet, the pure-Go build, staticcheck, and the race detector over
# the concurrent code.
vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -short -count=1 $(RACE_PKGS)
	$(GO) test -race -short -count=1 -run '$(RACE_CONVERT)' ./convert
	$(GO) test -race -short -count=1 -run '$(RACE_BUNDLE)' ./formats/bundle

# test runs every test against the real ONNX Runtime, a short fuzz of every
# parser, and each benchmark once so none of them rots.
test: ort vet
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz FUZZTIME=5s
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./... >/dev/null

# fuzz runs each fuzz target for FUZZTIME (default 30s; CI uses 5s).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench: ort
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: ort build
	./scripts/demo.sh $(BIN) $(DEMO_DIR)

clean:
	rm -rf bin $(DEMO_DIR)
