# `make test` is the README's test command and what .ci/run calls: it installs what the tests
# need (pinned), builds the extension, and runs every test, Rust and Python, plus each bench
# once in parity-only mode (timings are for `indexlab bench`).
PYTHON ?= python3

.PHONY: test install-test demo bench lint

install-test:
	$(PYTHON) -m pip install --quiet -r requirements/test.txt
	$(PYTHON) -m pip install --quiet --no-build-isolation -e .

test: install-test
	cargo test -p indexlab-core --release
	$(PYTHON) -m pytest
	$(PYTHON) -m pytest benches --benchmark-disable -q

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benches scripts examples
	$(PYTHON) -m ruff format --check python tests benches scripts examples
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest indexlab._core --allowlist .ci/stubtest-allowlist.txt

demo:
	$(PYTHON) -m pip install --quiet . && indexlab demo

bench:
	indexlab bench
