"""Each service started by ``genre stack up`` gets only the environment variables it needs.

The Prefect server and the deploy step need the process basics and Prefect's own settings; the worker runs
the flows, so it also gets GENRE's settings and the secrets the config names (pseudonym key, LLM API key,
PostgreSQL password, MLflow credentials). Nothing else of the caller's environment (cloud keys, tokens of
unrelated tools) reaches any of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genre_core.config import GenreConfig

BASICS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV",
          "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NO_PROXY", "no_proxy")
PREFIXES = {
    "server": ("PREFECT_",),
    "deploy": ("PREFECT_", "GENRE_PROJECT_DIR", "GENRE_SCHEDULE_", "GENRE_HOME"),
    "worker": ("PREFECT_", "GENRE_HOME", "GENRE_DATA_DIR", "GENRE_PROJECT_DIR", "MLFLOW_DISABLE_TELEMETRY",
               "DO_NOT_TRACK", "GX_ANALYTICS_ENABLED", "HF_", "TRANSFORMERS_", "CUDA_", "OMP_NUM_THREADS",
               "MKL_NUM_THREADS", "TORCH_", "PYTORCH_"),
}


def secret_vars(cfg: GenreConfig) -> tuple[str, ...]:
    """The environment variables holding secrets that the pipeline itself reads, plus those a publish target's
    section names in a ``*_env`` setting (``warehouse.<target>.password_env: SNOWFLAKE_PASSWORD``)."""
    section = cfg.warehouse.section()
    named = [v for k, v in (section.model_dump() if section is not None else {}).items()
             if k.endswith("_env") and isinstance(v, str)]
    return (cfg.privacy.key_env, cfg.llm.api_key_env, "GENRE_PG_PASSWORD", "PGPASSWORD",
            "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", *named)


def service_env(role: str, env: Mapping[str, str], cfg: GenreConfig) -> dict[str, str]:
    """The subset of ``env`` that service ``role`` (server | deploy | worker) may see."""
    if role not in PREFIXES:
        raise ValueError(f"unknown service role {role!r}; valid: {sorted(PREFIXES)}")
    allowed = set(BASICS) | (set(secret_vars(cfg)) if role == "worker" else set())
    prefixes = PREFIXES[role]
    return {k: v for k, v in env.items() if k in allowed or k.startswith(prefixes)}
