"""Point 3: image paths from data stay inside the data dir, regular files only, size-capped, a FIFO or
/dev/zero never hangs a stage; every flow and task runs under a timeout from config."""
from __future__ import annotations

import ast
import csv
import os
from pathlib import Path

import pytest

from tests.security.shop import REPO, items, make_shop, one_error_line


@pytest.mark.slow
def test_untrusted_image_paths_are_refused_without_hanging(tmp_path: Path) -> None:
    shop = make_shop(tmp_path, extra={"features": {"image": {"enabled": True, "num_workers": 0, "max_file_mb": 0.001}}})
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"\xff\xd8 not really a jpeg")
    (shop.folder / "link.jpg").symlink_to(outside)
    os.mkfifo(shop.folder / "fifo.jpg")
    (shop.folder / "big.jpg").write_bytes(b"\0" * 5000)
    pics = {"sku0": "/etc/passwd", "sku1": "~/x.jpg", "sku2": "../../outside.jpg", "sku3": "link.jpg",
            "sku4": "fifo.jpg", "sku5": "/dev/zero", "sku6": str(shop.folder / "fifo.jpg"), "sku7": "big.jpg"}
    lines = items().splitlines()
    rows = [lines[0]] + [f"{ln.split(',')[0]},P,d,dept,{pics[ln.split(',')[0]]}," for ln in lines[1:]]
    (shop.folder / "products.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert shop.genre("ingest", "--direct").returncode == 0
    proc = shop.genre("features", "--direct", "--json", timeout=180)  # a hang would time out here
    assert proc.returncode == 0, proc.stderr
    out = shop.genre("sql", "SELECT item_id, reason FROM feature_failures ORDER BY item_id", "--csv")
    reasons = dict(list(csv.reader(out.stdout.splitlines()))[1:])
    assert "outside the data dir" in reasons["sku0"] and "starts with '~'" in reasons["sku1"]
    assert "outside the data dir" in reasons["sku2"] and "outside the data dir" in reasons["sku3"]
    assert "is a FIFO" in reasons["sku4"] and "outside the data dir" in reasons["sku5"]
    assert "is a FIFO" in reasons["sku6"] and reasons["sku7"].startswith("oversized")


def test_a_fifo_as_a_data_file_fails_at_once(tmp_path: Path) -> None:
    shop = make_shop(tmp_path)
    (shop.folder / "events.csv").unlink()
    os.mkfifo(shop.folder / "events.csv")  # nobody ever writes to it: reading it would block forever
    proc = shop.genre("ingest", "--direct", timeout=90)
    assert proc.returncode == 1
    assert "is a FIFO, not a regular file" in one_error_line(proc)


def test_every_task_and_subflow_call_in_flows_has_the_configured_timeout() -> None:
    """Each `*_task(...)` / `.map(...)` call and each stage subflow in flows/ goes through timed()/timed_flow()
    or with_options(timeout_seconds=...); every stage of genre_core.stages has a stage_flow (pipeline lock) and every
    stage task the transient-only retry policy."""
    import importlib
    import pkgutil

    from prefect.tasks import Task

    import tasks
    from tasks import stages

    all_tasks: dict[str, Task] = {}  # every Prefect task of every tasks/ module (a new stage's module too)
    for mod in pkgutil.iter_modules(tasks.__path__):
        module = importlib.import_module(f"tasks.{mod.name}")
        all_tasks.update({n: v for n, v in vars(module).items() if isinstance(v, Task)})
    task_names = set(all_tasks)
    assert {"ingest_task", "feedback_task"} <= task_names
    for path in sorted((REPO / "flows").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in task_names:
                pytest.fail(f"{path.name}:{node.lineno}: {node.func.id}(...) called without timed()")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "map"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in task_names):
                pytest.fail(f"{path.name}:{node.lineno}: {node.func.value.id}.map without timed()")
    from flows.guard import timed, timed_flow
    from genre_core.config import load_config

    cfg = load_config(None, ["execution.task_timeout_s=7", "execution.flow_timeout_s=11"])
    assert timed(stages.ingest_task, cfg).timeout_seconds == 7
    from flows.nightly import nightly

    assert timed_flow(nightly, cfg).timeout_seconds == 11
    from genre_core.stages import NIGHTLY, STAGES, load
    from tasks.retry import retry_transient

    for stage in (*STAGES, NIGHTLY):  # a stage added to the list later is checked too
        assert getattr(load(stage.flow).fn, "genre_stage", None) == stage.name, f"{stage.flow}: not a stage_flow"
    for name in task_names:  # every stage task: transient-only retries, no result cache
        t = all_tasks[name]
        assert t.retry_condition_fn is retry_transient, name
        assert type(t.cache_policy).__name__ == "_None", (name, t.cache_policy)
