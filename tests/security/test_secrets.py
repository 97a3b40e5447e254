"""Point 4: credentials in URLs are refused when the config loads (naming the env var to use), whatever
leaves the process is redacted, and `genre stack up` gives each service only the variables it needs."""
from __future__ import annotations

from pathlib import Path

import pytest

from genre_core.config import GenreConfig, flatten, load_config
from genre_core.security.redact import redact
from tests.security.shop import make_shop, one_error_line

SECRET = "hunter2SECRET"
CASES = [
    ("tracking.uri", f"http://bob:{SECRET}@mlflow.internal:5000", "MLFLOW_TRACKING_PASSWORD"),
    ("warehouse.postgres.url", f"postgresql://genre:{SECRET}@db:5432/genre", "GENRE_PG_PASSWORD"),
    ("warehouse.postgres.url", f"postgresql://genre@db/genre?sslmode=require&sslpassword={SECRET}", "GENRE_PG_PASSWORD"),
    ("warehouse.postgres.url", f"host=db user=genre password={SECRET} dbname=genre", "GENRE_PG_PASSWORD"),
    ("llm.base_url", f"http://llm:8000/v1?api_key={SECRET}", "llm.api_key_env"),
    ("llm.base_url", f"https://user:{SECRET}@llm.example/v1", "llm.api_key_env"),
    ("execution.dask.address", f"tls://admin:{SECRET}@scheduler:8786", "DASK"),
]


@pytest.mark.parametrize("key,value,hint", CASES)
def test_credentials_in_config_are_refused_at_load_through_the_cli(tmp_path: Path, key: str, value: str,
                                                                   hint: str) -> None:
    shop = make_shop(tmp_path)
    proc = shop.genre("config", "--set", f"{key}={value}", timeout=60)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert key in line and hint in line and "credentials never go in the config" in line
    assert SECRET not in proc.stdout + proc.stderr  # not even the echo of the override


def test_credentials_in_a_config_file_are_refused_too(tmp_path: Path) -> None:
    shop = make_shop(tmp_path, extra={"tracking": {"uri": f"https://ops:{SECRET}@mlflow.example"}})
    proc = shop.genre("train", "--direct", timeout=60)
    assert proc.returncode == 2 and "tracking.uri" in one_error_line(proc) and SECRET not in proc.stderr


def test_plain_urls_still_load() -> None:
    cfg = load_config(None, ["tracking.uri=http://127.0.0.1:5000", "warehouse.postgres.url=postgresql://genre@db/genre",
                             "llm.base_url=http://127.0.0.1:8000/v1", "execution.dask.address=tcp://10.0.0.1:8786"])
    assert cfg.warehouse.postgres.url == "postgresql://genre@db/genre"


def test_any_publish_targets_connection_setting_is_checked() -> None:
    """Not only the built-in postgres target: a plugin target's ``warehouse.<target>.url/dsn`` is refused too."""
    from genre_core.security.redact import credential_problems

    flat = [("warehouse.snowflake.dsn", f"user=genre password={SECRET} account=x"),
            ("warehouse.clickhouse.http_url", f"https://genre:{SECRET}@ch.example:8443"),
            ("warehouse.parquet.path", "/srv/recs.parquet")]
    problems = credential_problems(flat)
    assert [p.split(":")[0] for p in problems] == ["warehouse.snowflake.dsn", "warehouse.clickhouse.http_url"]
    assert all("the password variable the publish target reads" in p and SECRET not in p for p in problems)


def test_one_redaction_helper_masks_every_form() -> None:
    for _, value, _ in CASES:
        assert SECRET not in redact(value), value
    assert SECRET not in redact(f"Authorization: Bearer {SECRET}") and "db:5432" in redact(CASES[1][1])


def test_flattened_config_reaches_mlflow_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a config built without load_config (library use) cannot put a secret into MLflow params."""
    from genre_core.tracking import RunLogger, client

    monkeypatch.setenv("GENRE_HOME", str(tmp_path / "home"))
    cfg = GenreConfig.model_validate({"warehouse": {"postgres": {"url": f"postgresql://g:{SECRET}@db/genre"}}})
    run = RunLogger(cfg, "redaction-check")
    run.params(flatten(cfg))
    run.json_artifact(cfg.model_dump(mode="json"), "config.json")
    run.end()
    params = client(cfg).get_run(run.run_id).data.params
    assert params["warehouse.postgres.url"] == "postgresql://g:***@db/genre"
    leaks = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []


def test_stack_services_get_only_the_variables_they_need() -> None:
    from genre_core.security.envfilter import service_env

    cfg = load_config(None)
    env = {"PATH": "/usr/bin", "HOME": "/root", "PREFECT_API_URL": "http://127.0.0.1:4200/api",
           "GENRE_HOME": "/h", "GENRE_PSEUDONYM_KEY": "k", "GENRE_PG_PASSWORD": "p", "GENRE_LLM_API_KEY": "a",
           "AWS_SECRET_ACCESS_KEY": "x", "GITHUB_TOKEN": "y", "OPENAI_API_KEY": "z", "GENRE_SCHEDULE_CRON": "0 2 * * *"}
    server, deploy, worker = (service_env(r, env, cfg) for r in ("server", "deploy", "worker"))
    for e in (server, deploy, worker):
        assert not {"AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY"} & set(e)
    assert not {"GENRE_PSEUDONYM_KEY", "GENRE_PG_PASSWORD", "GENRE_LLM_API_KEY"} & (set(server) | set(deploy))
    assert {"GENRE_PSEUDONYM_KEY", "GENRE_PG_PASSWORD", "GENRE_LLM_API_KEY", "GENRE_HOME"} <= set(worker)
    assert server["PREFECT_API_URL"] and deploy["GENRE_SCHEDULE_CRON"] == "0 2 * * *"
