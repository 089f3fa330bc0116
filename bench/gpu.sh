#!/usr/bin/env bash
# The GPU benchmark of issue 8, for a lent GPU machine that may have no network.
#
#   bash bench/gpu.sh                      # 7B, 1.5B, 0.5B Qwen2.5 shapes, 4-bit QLoRA, seq 1024, 10 steps
#   bash bench/gpu.sh --sizes 0.5b --steps 20
#   bash bench/gpu.sh --tiny               # CPU check with tiny shapes (no GPU needed)
#
# 1. Wheels in bench/wheels/ (if any) are installed with `pip install --no-index --find-links`: bring the
#    packages the machine lacks (unsloth, unsloth_zoo, trl, peft, bitsandbytes, ...) as wheels, built for its
#    Python and CUDA, without a torch wheel unless you mean to replace its torch.
# 2. The package runs from this checkout (PYTHONPATH), not installed.
# 3. bench/gpu_bench.py builds the random models, measures, prints one markdown table and writes
#    gpu_results.json / gpu_results.md to $OUT (else bench/).
# Time: the whole run keeps to $BENCH_BUDGET_S seconds (default 450), counting the wheel install; work that
# cannot start in time is reported as skipped. Pass --budget-s to override.
set -uo pipefail
start=$(date +%s)
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PIP_DISABLE_PIP_VERSION_CHECK=1 UNSLOTH_DISABLE_STATISTICS=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# A Python with torch: $PYTHON, else a CUDA-capable .venv, else python3, else the (CPU) .venv.
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then PY=.venv/bin/python
elif command -v python3 >/dev/null && python3 -c 'import torch' 2>/dev/null; then PY=python3
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else echo "gpu.sh: no Python with torch found (set PYTHON=...)" >&2; exit 2; fi

shopt -s nullglob
wheels=(bench/wheels/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
  echo "==> installing ${#wheels[@]} wheels from bench/wheels (no index)"
  "$PY" -m pip install -q --no-index --find-links bench/wheels "${wheels[@]}" \
    || echo "gpu.sh: some wheels did not install; going on with what is there" >&2
fi

"$PY" - <<'EOF'
import importlib.metadata as m
try:
    import torch
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device'
except Exception as e: dev = f'torch fails to import: {e}'
have = []
for p in ('torch', 'transformers', 'trl', 'peft', 'bitsandbytes', 'unsloth', 'unsloth_zoo', 'accelerate', 'datasets'):
    try: have.append(f"{p} {m.version(p)}")
    except m.PackageNotFoundError: have.append(f"{p} MISSING")
print(f"==> {dev}; " + ', '.join(have), flush=True)
EOF

budget=$(( ${BENCH_BUDGET_S:-450} - ($(date +%s) - start) ))
exec "$PY" bench/gpu_bench.py --budget-s "$budget" "$@"
