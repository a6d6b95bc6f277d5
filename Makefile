# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages the tests drive for real: the browser, the HTTPS proxy and the MQTT broker.
SYSTEM_PACKAGES := chromium caddy mosquitto
# Fonts the training plates are drawn in (synth/platefonts.py): same fonts, same data
# for tests and for `make train-recognizer`.
FONT_PACKAGES := fonts-dejavu-core fonts-liberation fonts-urw-base35 fonts-freefont-ttf \
	fonts-roboto-unhinted fonts-open-sans fonts-b612
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps demo test bench train-recognizer clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# onnxruntime and onnxruntime-openvino install the same module: a venv made before the switch
	# to OpenVINO (pyproject.toml) loses plain onnxruntime first, or the two would mix their files.
	if [ "$$(uname -sm)" = "Linux x86_64" ] && $(BIN)/pip show -q onnxruntime 2>/dev/null; then \
		$(BIN)/pip uninstall -y -q onnxruntime onnxruntime-openvino; fi
	$(BIN)/pip install -q -e '.[dev]'
	# rapidocr pins opencv-python, which must not sit beside the headless build: no deps.
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	touch $(STAMP)

demo: install
	$(BIN)/platewatch demo

system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do command -v $$pkg >/dev/null || test -x /usr/sbin/$$pkg || missing="$$missing $$pkg"; done; \
	for pkg in $(FONT_PACKAGES); do dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

test: install system-deps
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench

# Reproduces the committed recognizer files from their seeds on CPU and logs the curves to
# training/logs/: the two CRNNs worker/recognize/models/plate_rec_seed{1,2}.onnx (about 52 min each on 2
# cores with bfloat16) and the head on PP-OCRv4 features worker/recognize/models/plate_head.onnx (about
# 23 min). PyTorch is a development extra only.
train-recognizer: install system-deps
	$(BIN)/pip install -q -e '.[train]'
	$(BIN)/python -m training.recognizer --seed 1
	$(BIN)/python -m training.recognizer --seed 2
	$(BIN)/python -m training.plate_head

clean:
	rm -rf $(VENV) data .pytest_cache
