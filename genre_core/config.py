"""Typed configuration: ``conf/default.yaml`` + a dataset/scenario file + ``--set key.path=value`` overrides.

Every section is a pydantic model with ``extra="forbid"``, so a typo or a bad value fails at load time with the
key path in the message, before any work starts. Nothing happens at import time.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from genre_core.events import EventRule
from genre_core.features.config import FeaturesConfig
from genre_core.feedback.config import FeedbackConfig
from genre_core.llm.config import LLMConfig
from genre_core.models.config import TrainConfig
from genre_core.recommend.config import RecommendConfig
from genre_core.registry import import_plugins, section_for, validate_plugin_sections
from genre_core.tuning.config import TuneConfig
from genre_core.security.config_checks import config_problems
from genre_core.security.redact import redact

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "conf" / "default.yaml"


class ConfigError(ValueError):
    """Raised for a config file or override that cannot be used; the message names the key path."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GenericReaderConfig(Strict):
    """A canonical CSV/Parquet layout mapped by config (see conf/examples/generic-csv.yaml)."""

    interactions: str  # file path (relative to the data dir)
    items: str | None = None
    users: str | None = None
    format: Literal["csv", "parquet"] = "csv"
    separator: str = ","
    encoding: str = "utf8"
    has_header: bool = True
    columns: dict[str, str] = Field(
        default_factory=lambda: {"user_id": "user_id", "item_id": "item_id", "value": "rating", "ts": "timestamp"},
        description="canonical name -> source column: user_id, item_id, value, ts, event_type",
    )
    item_columns: dict[str, str] = Field(
        default_factory=lambda: {"item_id": "item_id", "title": "title", "text": "text", "category": "category"}
    )
    user_columns: dict[str, str] = Field(default_factory=lambda: {"user_id": "user_id"})
    event_type: str = "rating"  # used when no event_type column is mapped
    timestamp_format: str = "unix"  # "unix", "unix_ms" or a strptime format such as "%Y-%m-%d %H:%M:%S"

    @field_validator("separator")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("separator must be a single character")
        return v

    @field_validator("columns")
    @classmethod
    def _required_columns(cls, v: dict[str, str]) -> dict[str, str]:
        missing = {"user_id", "item_id"} - set(v)
        if missing:
            raise ValueError(f"columns must map {sorted(missing)}")
        unknown = set(v) - {"user_id", "item_id", "value", "ts", "event_type"}
        if unknown:
            raise ValueError(f"unknown canonical columns {sorted(unknown)}; valid: user_id, item_id, value, ts, event_type")
        return v


class DatasetConfig(BaseModel):
    """``dataset``: which registered reader reads it (``reader``) and that reader's section ``dataset.<reader>``
    (validated against the reader class's ``Config``; ``generic`` is the built-in typed one)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = "movielens-100k"
    reader: str = "movielens"  # a registered dataset reader (genre_core.ingest.registry.READERS)
    path: str = "ml-100k"  # relative paths resolve against the data dir (GENRE_DATA_DIR)
    tmdb_path: str | None = "ml-100k-tmdb-posters"  # optional TMDB side info for MovieLens 100K
    fetch: Literal["movielens-100k"] | None = "movielens-100k"  # downloadable when the files are absent
    fetch_if_missing: bool = True
    generic: GenericReaderConfig | None = None

    @field_validator("reader")
    @classmethod
    def _registered(cls, v: str) -> str:
        from genre_core.ingest.registry import READERS  # noqa: PLC0415

        return READERS.check(v)

    @model_validator(mode="after")
    def _plugin_sections(self) -> DatasetConfig:
        from genre_core.ingest.registry import READERS  # noqa: PLC0415

        validate_plugin_sections(self, READERS, "dataset")
        return self

    def section(self) -> BaseModel | None:
        """The typed section of the configured reader (``dataset.<reader>``), None when it has none."""
        from genre_core.ingest.registry import READERS  # noqa: PLC0415

        return section_for(self, READERS, self.reader)


class ValidationConfig(Strict):
    value_min: float | None = 1.0
    value_max: float | None = 5.0
    max_reject_rate: float = Field(0.05, ge=0.0, le=1.0)
    future_tolerance_s: int = Field(86_400, ge=0)  # timestamps later than now + this are rejected
    min_year: int = 1970  # timestamps before this year are rejected


class PrivacyConfig(Strict):
    pseudonymize_user_ids: bool = False
    key_env: str = "GENRE_PSEUDONYM_KEY"


class TrackingConfig(Strict):
    uri: str | None = None  # None: sqlite store under GENRE_HOME/mlflow
    experiment: str = "genre"
    registered_model: str = "genre-recommender"  # holds whichever model train.register_model names
    champion_metric: str = "ndcg@10"


class ScheduleConfig(Strict):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"


class DaskConfig(Strict):
    address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)


class ExecutionConfig(Strict):
    runner: Literal["local", "dask"] = "local"
    partitions: int = Field(4, ge=1)
    dask: DaskConfig = DaskConfig()
    task_timeout_s: float = Field(4 * 3600, gt=0)  # a stage task running longer fails (Prefect timeout_seconds)
    flow_timeout_s: float = Field(12 * 3600, gt=0)  # a flow run longer than this fails instead of overlapping the next night
    lock_wait_s: float = Field(0, ge=0)  # how long a writing run waits for GENRE_HOME's pipeline lock (0: refuse at once)


class WarehouseConfig(BaseModel):
    """``warehouse``: the DuckDB warehouse, and where recommendations are published: ``publish_to`` names a
    registered publish target whose settings are the section ``warehouse.<target>`` (validated against the
    target class's ``Config``)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    path: str = "warehouse.duckdb"  # relative to GENRE_HOME
    serving_path: str = "serving.duckdb"  # what users query; replaced atomically on publish (duckdb target)
    publish_to: str = "duckdb"  # a registered publish target (genre_core.recommend.targets.TARGETS)
    lock_timeout_s: float = Field(60.0, ge=0)  # how long a publish waits for a lock held by another publish

    @field_validator("publish_to")
    @classmethod
    def _registered(cls, v: str) -> str:
        from genre_core.recommend.targets import TARGETS  # noqa: PLC0415

        return TARGETS.check(v)

    @model_validator(mode="after")
    def _plugin_sections(self) -> WarehouseConfig:
        from genre_core.recommend.targets import TARGETS  # noqa: PLC0415

        validate_plugin_sections(self, TARGETS, "warehouse")
        return self

    def section(self) -> BaseModel | None:
        """The typed section of the configured publish target (``warehouse.<publish_to>``), or None."""
        from genre_core.recommend.targets import TARGETS  # noqa: PLC0415

        return section_for(self, TARGETS, self.publish_to)


class GenreConfig(Strict):
    # modules imported before the rest is validated, so their classes register (models, readers, feature
    # extractors, LLM backends, publish targets) and their config sections validate; e.g. [my_pkg.genre]
    plugins: list[str] = Field(default_factory=list)
    data_dir: str | None = None  # None: $GENRE_DATA_DIR, else ./data, else ../shared/data
    dataset: DatasetConfig = DatasetConfig()
    # event type -> role (positive / negative / ignore), value threshold, weight; see genre_core/events.py
    events: dict[str, EventRule] = Field(default_factory=dict)
    validation: ValidationConfig = ValidationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    features: FeaturesConfig = FeaturesConfig()
    llm: LLMConfig = LLMConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    recommend: RecommendConfig = RecommendConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    tracking: TrackingConfig = TrackingConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    execution: ExecutionConfig = ExecutionConfig()
    _overrides: list[str] = PrivateAttr(default_factory=list)  # key paths set with --set (load_config)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                          "save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=5"`` -> (["train", "epochs"], 5). The value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"override {text!r} has an empty key segment")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override key {'.'.join(parts)}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the config schema)"
        elif err["type"] == "value_error":
            msg = str(err.get("ctx", {}).get("error", msg))
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> GenreConfig:
    """Load ``conf/default.yaml``, deep-merge the given file, apply ``key.path=value`` overrides, validate.

    Raises ConfigError naming the key path and the reason for any unknown key or bad value.
    """
    data = _read_yaml(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_file() else {}
    sources = [str(DEFAULT_CONFIG)]
    if path is not None:
        data = _deep_merge(data, _read_yaml(Path(path)))
        sources.append(str(path))
    for ov in overrides:
        parts, value = parse_override(ov)
        _apply_override(data, parts, value)
        sources.append(f"--set {ov}")
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"plugins must be a list of module names ({' + '.join(sources)}), got {plugins!r}")
    try:
        import_plugins(plugins)
        cfg = GenreConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(redact(_format_errors(exc, " + ".join(sources)))) from None
    except ValueError as exc:  # a plugin module that does not import
        raise ConfigError(redact(f"invalid configuration ({' + '.join(sources)}): {exc}")) from None
    problems = config_problems(cfg)
    if problems:
        raise ConfigError("\n  ".join([f"invalid configuration ({redact(' + '.join(sources))}):", *problems]))
    cfg._overrides = [".".join(parse_override(ov)[0]) for ov in overrides]
    return cfg


def explicit_overrides(cfg: GenreConfig) -> list[str]:
    """The key paths given with ``--set`` when ``cfg`` was loaded (e.g. ``["train.hybrid.lr"]``): they win over
    tuned parameters."""
    return list(cfg._overrides)


def flatten(cfg: BaseModel | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a config into ``{"train.epochs": 5, ...}`` (lists and None rendered as strings)."""
    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else cfg
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
