"""Process environment for the services GENRE drives (Prefect, MLflow); set before they are imported."""
from __future__ import annotations

import os

from genre_core.paths import genre_home


def prepare_environment() -> None:
    """Defaults that keep all state under GENRE_HOME and everything offline; explicit env vars win."""
    home = genre_home()
    prefect_home = home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if os.environ.get("PREFECT_HOME"):
        os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
