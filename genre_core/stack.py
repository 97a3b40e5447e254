"""``genre stack up|down|status``: a local Prefect server, the process work pool, deployments and a worker.

Everything lives under GENRE_HOME: the Prefect database (PREFECT_HOME), logs and pid files. Analytics are off.
The processes are started with the Prefect CLI of this environment; nothing here imports Prefect.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from genre_core.config import PROJECT_ROOT, load_config
from genre_core.paths import genre_home
from genre_core.runtime import prepare_environment

POOL = "genre-process"


def _prefect() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


def _pidfile(name: str) -> Path:
    d = genre_home() / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.pid"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


def stack_env(port: int, config: str | None = None) -> dict[str, str]:
    """The environment for server, deploy and worker: API URL, PREFECT_HOME, schedule from config."""
    prepare_environment()
    cfg = load_config(config)
    env = dict(os.environ)
    env.update({
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "GENRE_HOME": str(genre_home()),
        "GENRE_PROJECT_DIR": str(PROJECT_ROOT),
        "GENRE_SCHEDULE_CRON": cfg.schedule.cron,
        "GENRE_SCHEDULE_TZ": cfg.schedule.timezone,
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    })
    return env


def _start(name: str, cmd: list[str], env: dict[str, str]) -> int:
    logs = genre_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = (logs / f"{name}.log").open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                            start_new_session=True)
    _pidfile(name).write_text(str(proc.pid))
    return proc.pid


def up(port: int = 4200, config: str | None = None, timeout_s: float = 180) -> dict[str, str]:
    """Start server (if not running), create the pool, deploy prefect.yaml, start a worker. Returns URLs.

    Each process gets only the variables its role needs (``security.envfilter``): no secret reaches the server.
    """
    from genre_core.security.envfilter import service_env  # noqa: PLC0415

    full = stack_env(port, config)
    cfg = load_config(config)
    env = service_env("server", full, cfg)
    api = env["PREFECT_API_URL"]
    if not _healthy(api):
        _start("prefect-server", [*_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env)
        deadline = time.monotonic() + timeout_s
        while not _healthy(api):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not become healthy on {api} in {timeout_s:.0f}s; "
                                   f"see {genre_home() / 'logs' / 'prefect-server.log'}")
            time.sleep(1)
    run = dict(env=service_env("deploy", full, cfg), cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    pools = subprocess.run([*_prefect(), "work-pool", "ls"], **run).stdout
    if POOL not in pools:
        subprocess.run([*_prefect(), "work-pool", "create", POOL, "--type", "process"], **run)
    subprocess.run([*_prefect(), "--no-prompt", "deploy", "--all", "--prefect-file", str(PROJECT_ROOT / "prefect.yaml")], **run)
    _start("prefect-worker", [*_prefect(), "worker", "start", "--pool", POOL, "--type", "process"],
           service_env("worker", full, cfg))
    return {"ui": f"http://127.0.0.1:{port}", "api": api, "pool": POOL}


def down() -> None:
    """Stop the worker and server started by ``up``."""
    for name in ("prefect-worker", "prefect-server"):
        pf = _pidfile(name)
        if pf.exists():
            try:
                os.killpg(int(pf.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError, PermissionError):
                pass
            pf.unlink()


def stack_command(command: str, port: int = 4200) -> int:
    if command == "up":
        info = up(port)
        print(f"Prefect UI: {info['ui']}  (work pool {info['pool']}; deployments from prefect.yaml; worker started)")
        print(f"Logs: {genre_home() / 'logs'}   Stop with: genre stack down")
        return 0
    if command == "down":
        down()
        print("stopped")
        return 0
    api = f"http://127.0.0.1:{port}/api"
    print(f"Prefect server {api}: {'healthy' if _healthy(api) else 'not running'}")
    return 0
