# `make test` is the README's test command and what .ci/run calls: it installs what the tests
# need (pinned), builds the extension, and runs every test, Rust and Python, plus each bench
# once in parity-only mode (timings are for `indexlab bench`).
PYTHON ?= python3

.PHONY: test install-test demo bench lint wheel

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

# The portable wheel in dist/: the stable ABI (one file for CPython 3.11+: the `abi3` feature of
# rust/indexlab-py), manylinux2014 (glibc 2.17+) by linking with zig, with the bundled sample;
# plus the sdist. Its own target folder: the zig build shares no artifacts with the editable
# install's, and keeps off the folder where `pip install -e .` stages its extension.
# .ci/wheel_check installs it where there is no Rust toolchain.
wheel:
	$(PYTHON) -m pip install --quiet $$(grep -E '^maturin==' requirements/test.txt) -r requirements/wheel.txt
	rm -rf dist
	CARGO_TARGET_DIR=target/wheel $(PYTHON) -m maturin build --release --features abi3 --zig \
		--compatibility manylinux2014 --out dist
	$(PYTHON) -m maturin sdist --out dist
