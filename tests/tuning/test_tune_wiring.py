"""The tune stage is wired like every stage: CLI subcommand, Prefect flow, deployment in prefect.yaml; the core
stays free of Prefect and of Optuna at config-load time."""
from __future__ import annotations

import subprocess
import sys

import yaml

from genre_core.cli import build_parser
from genre_core.config import PROJECT_ROOT


def test_cli_flow_and_deployment() -> None:
    args = build_parser().parse_args(["tune", "--direct", "--set", "tune.n_trials=3"])
    assert args.command == "tune" and args.direct and args.overrides == ["tune.n_trials=3"]
    from flows import FLOWS

    flow = FLOWS["tune"]
    assert flow.name == "tune" and set(flow.parameters.properties) == {"params", "force"}
    deployments = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]
    tune = next(d for d in deployments if d["name"] == "tune")
    assert tune["entrypoint"] == "flows/tune.py:tune" and tune["work_pool"]["name"] == "genre-process"


def test_config_load_imports_neither_prefect_nor_optuna() -> None:
    code = ("import sys; from genre_core.config import load_config; load_config(None, ['tune.models=[bpr]']); "
            "print('prefect' in sys.modules, 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_tune_is_one_stage_entry_in_nightly_order_only_when_enabled() -> None:
    from genre_core.config import load_config
    from genre_core.stages import get_stage, nightly_plan

    names = [s.name for s in nightly_plan(load_config(None, ["llm.enabled=true", "tune.enabled=true"]))]
    assert names == ["ingest", "feedback", "features", "enrich", "tune", "train", "recommend"]
    assert "tune" not in [s.name for s in nightly_plan(load_config(None, ["tune.enabled=false"]))]
    assert get_stage("tune").nightly_kwargs == {"force": False}  # the nightly re-tunes only what is due
    assert "tune" in build_parser().parse_args(["tune"]).command
