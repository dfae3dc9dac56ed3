# Two commands set everything up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV := FEEDBACK_ENV=development
WORKERS ?= 2

.PHONY: run test test-system-deps check bench lock clean

# The exact versions of every package, with their hashes, are in requirements.lock; the project itself
# is installed on top of them without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(DEV) $(BIN)/feedback-app db upgrade
	$(DEV) $(BIN)/feedback-app bulletin import
	$(DEV) $(BIN)/feedback-app run --host 127.0.0.1 --port 5000

# Browser tests need Chromium and a CJK font; mail tests need Dovecot (Debian packages).
test-system-deps:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . && command -v dovecot >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "请以 root 运行，或先安装 chromium、fonts-wqy-microhei 与 dovecot-imapd" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-wqy-microhei dovecot-imapd >/dev/null; }

test: $(STAMP) test-system-deps
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile -q

# The import contract (pyproject.toml), the linter and the type checker.
check: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# After changing a range in pyproject.toml: the newest versions it allows, written to requirements.lock.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra test --extra lint --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) instance
