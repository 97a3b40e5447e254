"""The one list of pipeline stages, used by the CLI (``genre <stage>``), the Prefect flows (``flows.FLOWS``,
``flows/nightly.py``) and ``genre nightly --direct`` (``genre_core.pipeline``).

Adding a stage is one ``Stage`` entry: its library function (``cfg, progress -> summary dict``), its Prefect
flow, and whether the nightly run includes it for a config. The run guarantees come with the entry: the pipeline
lock (``run_direct``; the flow is declared with ``flows.guard.stage_flow``, its tasks with
``tasks.retry.stage_task``: transient-only retries), and the flow timeout (``execution.flow_timeout_s``,
applied by the CLI and by ``nightly`` to every stage's flow). Both are named as ``"module:attribute"`` and
imported only when run, so listing stages imports neither torch nor Prefect (genre_core never imports the
``flows`` package itself; the CLI resolves a flow by this name when asked to run through the engine).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genre_core.config import GenreConfig


def _always(cfg: GenreConfig) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str
    runner: str  # "module:function" of the library: (cfg, progress=bool) -> summary dict
    flow: str  # "module:attribute" of the Prefect flow: (StageParams) -> summary dict
    in_nightly: Callable[[GenreConfig], bool] = _always  # whether `nightly` runs it for this config
    help: str = ""
    # keyword arguments the nightly passes to the runner and the flow (e.g. tune: only re-tune what is due)
    nightly_kwargs: dict[str, Any] = field(default_factory=dict)

    def run_direct(self, cfg: GenreConfig, progress: bool = True, **kwargs: Any) -> dict[str, Any]:
        """Run the stage in this process, without the Prefect engine, holding GENRE_HOME's pipeline lock
        (re-entrant; the Prefect flow of a stage takes it through ``flows.guard.stage_flow``)."""
        from genre_core.locking import pipeline_lock  # noqa: PLC0415

        with pipeline_lock(self.name, cfg.execution.lock_wait_s):
            return load(self.runner)(cfg, progress=progress, **kwargs)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "genre_core.ingest.pipeline:run_ingest", "flows.ingest:ingest",
          help="read, clean and validate the dataset into the warehouse"),
    Stage("feedback", "genre_core.feedback.pipeline:run_feedback", "flows.feedback:feedback",
          lambda cfg: cfg.feedback.enabled,
          help="score published lists against interactions ingested after them (feedback.enabled)"),
    Stage("features", "genre_core.features.pipeline:run_features", "flows.features:features",
          help="embed changed items for every enabled modality"),
    Stage("enrich", "genre_core.llm.pipeline:run_enrich", "flows.enrich:enrich", lambda cfg: cfg.llm.enabled,
          help="LLM item descriptions and user profiles (llm.enabled)"),
    Stage("tune", "genre_core.tuning.tuner:run_tune", "flows.tune:tune", lambda cfg: cfg.tune.enabled,
          help="Optuna search on the validation split; best parameters stored for train (tune.enabled: nightly "
               "re-tunes only what is due)", nightly_kwargs={"force": False}),
    Stage("train", "genre_core.models.pipeline:run_train", "flows.train:train",
          help="train, evaluate and register the configured models"),
    Stage("recommend", "genre_core.recommend.pipeline:run_recommend", "flows.recommend:recommend",
          help="publish top-K per user from the champion"),
)
NIGHTLY = Stage("nightly", "genre_core.pipeline:run_nightly", "flows.nightly:nightly", help="the whole pipeline")


def load(target: str) -> Callable[..., Any]:
    """Import ``"module:attribute"`` and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_stage(name: str) -> Stage:
    """The stage ``name`` (``nightly`` included); ValueError listing the valid names."""
    for stage in (*STAGES, NIGHTLY):
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; valid: {', '.join(s.name for s in (*STAGES, NIGHTLY))}")


def nightly_plan(cfg: GenreConfig) -> list[Stage]:
    """The stages ``nightly`` runs for ``cfg``, in order."""
    return [s for s in STAGES if s.in_nightly(cfg)]
