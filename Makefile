# The project's front door. Every target installs what it needs first.
#   make test      lint + the whole test suite (what CI runs)
#   make synth     print the CloudFormation template (no AWS credentials needed)
#   make bootstrap once per account/region: the CDK's staging bucket and roles
#   make deploy    deploy to the account/region of your AWS CLI profile
#   make destroy   delete the stack and everything in it
#   make local     the whole backend on this machine: ws://127.0.0.1:$(PORT)
#                  AUTH=token for real token checks, FRESH=1 to wipe stored data
#   make token     a token for `make local AUTH=token`: make -s token USER=alice (USER= is required)
#   make bench     the local stack under load: CLIENTS=100 MESSAGES=2000, ACK=1 for clients in ack mode,
#                  RATE=300 to offer that many messages a second (else each client waits for its ack)
#                  (figures in docs/performance.md)
#   make cost      docs/cost.md's tables, $ per million messages, from counts on the handlers
#   make cpu       the handlers' CPU time per action, and Lambda duration and cost by memory size: RUNS=50
#                  (and docs/performance.md's table of them)
#   make soak      load with clients dropping, vanishing and reconnecting: SOAK_CLIENTS=200 SOAK_MESSAGES=10000
#                  DROP_RATE=0.01 ACK_SHARE=0.5 (the share of clients in ack mode)
# Pass CDK context with CDK_ARGS, e.g.  make deploy CDK_ARGS="-c instance=alice"

SHELL := /bin/bash
VENV ?= .venv
CDK_ARGS ?=
PORT ?= 8080
AUTH ?= dev
FRESH ?=
LOCAL_ARGS ?=
CLIENTS ?= 100
ACK ?=
RATE ?=
MESSAGES ?= 2000
SOAK_CLIENTS ?= 200
SOAK_MESSAGES ?= 10000
DROP_RATE ?= 0.01
ACK_SHARE ?= 0.5
RUNS ?= 50
# pytest processes (pytest-xdist) for make test: three, as the end-to-end tests spend part of their time
# waiting on sockets, so a third keeps both cores busy (4 min 20 s with two, 3 min 27 s with three, measured before the containers were forked)
TEST_JOBS ?= 3
# The local stack's state: its data, its synthesized template, its token keys. One stack
# per directory: a second make local needs its own (make local LOCAL_DIR=.local-2 PORT=8081).
LOCAL_DIR ?= .local
# Python 3.13 (the Lambda runtime) where present, else any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo "$$p"; break; }; done)

# make local: a stack already running on $(LOCAL_DIR) stops this one at once, in one line,
# before anything is installed or synthesized (local/state_lock.py)
ifneq ($(filter local,$(MAKECMDGOALS)),)
STATE_IN_USE := $(shell $(PYTHON) -m local check-state --state-dir $(LOCAL_DIR) 2>&1)
ifneq ($(STATE_IN_USE),)
$(error $(STATE_IN_USE))
endif
endif

# make token: USER must be given on its command line (the shell's $USER, maybe empty, is
# not whom you mean); said at once, before anything is installed
ifneq ($(filter token,$(MAKECMDGOALS)),)
ifneq ($(origin USER) $(if $(strip $(USER)),set),command line set)
$(error make token USER=<user id>: which user the token is for (make -s token USER=alice))
endif
endif

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
CDK := npx --no-install cdk

.PHONY: install test lint synth bootstrap deploy destroy local token bench cpu units cost smoke soak clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(VENV)/bin/python || { \
		test -n "$(PYTHON)" || { echo "error: need python3.13 (or python3 >= 3.11) on PATH" >&2; exit 1; }; \
		echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed

lint: install
	ruff check .
	ruff format --check .

# With bytecode caching on even where the environment turns it off: each pytest worker
# and each local stack process otherwise compiles the project and rewrites the tests again.
# Each worker takes the next test when it has two or fewer left, so the slow ones, collected
# first, spread over the workers and none is left for the end; the infrastructure tests go to
# one worker together, so only one pays for the CDK (tests/conftest.py).
test: lint
	env -u PYTHONDONTWRITEBYTECODE pytest -n $(TEST_JOBS)

synth: install
	$(CDK) synth $(CDK_ARGS)

bootstrap: install
	$(CDK) bootstrap $(CDK_ARGS)

deploy: install
	python -m stacks.preflight $(CDK_ARGS)
	$(CDK) deploy $(CDK_ARGS)

destroy: install
	$(CDK) destroy $(CDK_ARGS)

local: install
	@case "$(AUTH)" in dev) ctx=dev;; token) ctx=cognito;; *) echo "AUTH must be dev or token" >&2; exit 2;; esac; \
	echo "synthesizing (auth=$$ctx) into $(LOCAL_DIR)/cdk.out"; \
	$(CDK) synth --quiet -c auth=$$ctx $(CDK_ARGS) -o $(LOCAL_DIR)/cdk.out
	@python -m local run --cdk-out $(LOCAL_DIR)/cdk.out --state-dir $(LOCAL_DIR) --port $(PORT) \
		$(if $(FRESH),--fresh) $(LOCAL_ARGS)

token: install
	@python -m local token "$(USER)" --port $(PORT) --state-dir $(LOCAL_DIR)

bench: install
	$(CDK) synth --quiet -c auth=dev -o $(LOCAL_DIR)/bench/cdk.out
	python -m bench.bench --cdk-out $(LOCAL_DIR)/bench/cdk.out --state-dir $(LOCAL_DIR)/bench \
		--clients $(CLIENTS) --messages $(MESSAGES) $(if $(ACK),--ack) $(if $(RATE),--rate $(RATE))

cpu: install
	$(CDK) synth --quiet -c auth=dev -o $(LOCAL_DIR)/cpu/cdk.out
	python -m bench.cpu --cdk-out $(LOCAL_DIR)/cpu/cdk.out --state-dir $(LOCAL_DIR)/cpu --runs $(RUNS) --write

smoke: install
	@test -n "$(URL)" || { echo "make smoke URL=wss://… TOKEN_A=… TOKEN_B=… (or USER_A=… USER_B=… in dev mode)" >&2; exit 2; }
	@# the tokens go by the environment (TOKEN_A, TOKEN_B), never on a command line that make or ps would show
	@python -m bench.smoke --url "$(URL)" $(if $(TOKEN_A),,--user-a "$(or $(USER_A),smoke-a)" --user-b "$(or $(USER_B),smoke-b)")

units: install
	@PYTHONPATH=.:lambda_src:tests python -m bench.write_units

cost: install
	@PYTHONPATH=.:lambda_src:tests python -m bench.cost --write

soak: install
	$(CDK) synth --quiet -c auth=dev -o $(LOCAL_DIR)/soak/cdk.out
	python -m bench.soak --cdk-out $(LOCAL_DIR)/soak/cdk.out --state-dir $(LOCAL_DIR)/soak \
		--clients $(SOAK_CLIENTS) --messages $(SOAK_MESSAGES) --drop-rate $(DROP_RATE) --ack-share $(ACK_SHARE)

clean:
	rm -rf cdk.out .pytest_cache .ruff_cache
