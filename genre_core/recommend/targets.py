"""Publish targets by config name (``warehouse.publish_to``): ``@TARGETS.register(name)`` on a
``PublishTarget``.

Every target takes the same input (the merged ``RecommendResult`` and its ``RunRecord``) and returns the same
summary, ``{"published_to", "target", "serving_path", "pruned_runs"}``. Its settings are the section
``warehouse.<name>``, validated at config load against the class's ``Config``. Built in: ``duckdb`` (the
serving file, swapped atomically; ``genre_core.recommend.publish``) and ``postgres`` (partitions attached in
one transaction; ``genre_core.recommend.postgres``).
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from genre_core.registry import Registry

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from genre_core.config import GenreConfig
    from genre_core.recommend.publish import RunRecord
    from genre_core.recommend.merge import RecommendResult


class PublishTarget(ABC):
    """Publishes one complete run atomically: readers see the previous run or this one, never a mix."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel] | None] = None  # the typed ``warehouse.<name>`` section, if any
    # true: ``publish`` also publishes ``result.explanations`` (LLM explanations) with the run; false: a run's
    # explanations are left out (with a warning) and only its recommendations are published
    publishes_explanations: ClassVar[bool] = False

    def __init__(self, cfg: GenreConfig, section: Any) -> None:
        self.cfg = cfg
        self.section = section

    @abstractmethod
    def publish(self, result: RecommendResult, run: RunRecord) -> dict[str, Any]:
        """Publish ``result`` (recs, similar; explanations when ``publishes_explanations``) as the latest run ``run``, keeping ``recommend.keep_runs`` runs.
        Returns ``{"published_to": name, "target": where (no secrets), "serving_path": file or None,
        "pruned_runs": [run ids dropped]}``."""


TARGETS: Registry[PublishTarget] = Registry("publish target", "warehouse.publish_to",
                                            builtin=("genre_core.recommend.targets",))


@TARGETS.register("duckdb")
class DuckDBTarget(PublishTarget):
    """The serving DuckDB file ``warehouse.serving_path`` under GENRE_HOME (table ``explanations`` included)."""

    publishes_explanations = True

    def publish(self, result: RecommendResult, run: RunRecord) -> dict[str, Any]:
        from genre_core.paths import serving_path  # noqa: PLC0415
        from genre_core.recommend.publish import publish  # noqa: PLC0415

        path = publish(serving_path(self.cfg), result.recs, run, similar=result.similar,
                       keep_runs=self.cfg.recommend.keep_runs, explanations=result.explanations)
        return {"published_to": self.name, "target": str(path), "serving_path": str(path), "pruned_runs": []}


class PostgresTargetConfig(BaseModel):
    """``warehouse.postgres``: the PostgreSQL database that receives the published runs."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None  # libpq URL or key=value string; the password comes from GENRE_PG_PASSWORD, never here


@TARGETS.register("postgres")
class PostgresTarget(PublishTarget):
    """PostgreSQL at ``warehouse.postgres.url`` (psycopg, the 'postgres' extra; view ``explanations`` included)."""

    Config = PostgresTargetConfig
    publishes_explanations = True

    def publish(self, result: RecommendResult, run: RunRecord) -> dict[str, Any]:
        from genre_core.recommend.postgres import publish_postgres  # noqa: PLC0415 - psycopg only when asked for

        out = publish_postgres(self.section.url, result.recs, run, similar=result.similar,
                               keep_runs=self.cfg.recommend.keep_runs, lock_timeout_s=self.cfg.warehouse.lock_timeout_s,
                               explanations=result.explanations)
        return {"published_to": self.name, "target": out["target"], "serving_path": None,
                "pruned_runs": out["pruned_runs"]}


def publish_with_target(cfg: GenreConfig, result: RecommendResult, run: RunRecord) -> dict[str, Any]:
    """Publish through the target named by ``warehouse.publish_to`` with its section ``warehouse.<name>``."""
    target = TARGETS.get(cfg.warehouse.publish_to)
    if result.explanations is not None and not target.publishes_explanations:
        log.warning("publish target %r does not publish explanations: %d explanation rows left out (DuckDB does)",
                    target.name, result.explanations.height)
    return target(cfg, cfg.warehouse.section()).publish(result, run)
