"""The Prefect UI as a user uses it, in a real browser (Playwright driving the Debian Chromium at
/usr/bin/chromium) against the end-to-end stack: the Deployments page lists `nightly` with its schedule; a
custom run of a stage is started from the deployment's parameter form with an override; it completes; its
artifacts open. A screenshot of the finished run is kept under $GENRE_TEST_ARTIFACTS (default
tests/artifacts/, gitignored). Selectors are roles and visible texts, waits are Playwright auto-waits."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import NightlyRun, Stack, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# The stage run from the form, the override typed into it, and what proves the override took effect.
STAGE, K = "recommend", 5
OVERRIDE = f"recommend.k={K}"
# Artifacts the custom run must show, each with a text its page must render (one line per artifact).
ARTIFACTS = {
    "recommend-run": "Published recommendations",
}
SCHEDULE_TEXT = "At 02:00 AM every day"  # how the UI renders conf/default.yaml's schedule.cron "0 2 * * *"
RUN_TIMEOUT_MS = 300_000


def _artifact_dir() -> Path:
    d = Path(os.environ.get("GENRE_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def page():  # noqa: ANN201 - a playwright Page
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (`apt-get install -y chromium`; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra) is missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def test_custom_stage_run_from_the_ui(prefect_stack: Stack, nightly_run: NightlyRun, page) -> None:  # noqa: ANN001
    assert "STATE COMPLETED" in nightly_run.stdout, nightly_run.log[-3000:]  # the stage needs a champion
    try:
        _drive(prefect_stack, page)
    except Exception:
        shot = _artifact_dir() / f"ui-{STAGE}-failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot at the failure: {shot}")
        raise


def _drive(stack: Stack, pg) -> None:  # noqa: ANN001 - a playwright Page
    from playwright.sync_api import expect  # noqa: PLC0415 - optional dev dependency

    # 1. Deployments page: `nightly` with its cron schedule, the stage deployment next to it
    pg.goto(f"{stack.url}/deployments")
    nightly_row = pg.locator("tr", has=pg.locator("a[href*='/deployments/deployment/']", has_text="nightly"))
    expect(nightly_row.first).to_be_visible()
    expect(nightly_row.first.locator(".deployment-schedule-tags__tag")).to_have_text(SCHEDULE_TEXT)
    # 2. the stage deployment -> Run -> Custom run: the typed parameter form
    pg.locator("a[href*='/deployments/deployment/']", has_text=re.compile(rf"^\s*{STAGE}\b")).first.click()
    pg.get_by_role("button", name="Run", exact=True).click()
    pg.get_by_text("Custom run", exact=True).click()
    expect(pg.get_by_text("Overrides (Optional)")).to_be_visible()
    name_box = pg.get_by_role("textbox").first  # Run Name, pre-filled with a generated name once the form is ready
    expect(name_box).not_to_have_value("")
    run_name = f"ui-{STAGE}-k{K}-{int(time.time())}"
    name_box.fill(run_name)
    expect(name_box).to_have_value(run_name)
    boxes = pg.get_by_role("textbox")  # run name, config file (+ one per override)
    expect(boxes).to_have_count(2)
    pg.get_by_role("button", name="Add item").click()  # a new entry in the `overrides` list
    expect(boxes).to_have_count(3)  # wait for it: filling earlier would type into the config box
    boxes.nth(2).fill(OVERRIDE)
    expect(boxes.nth(2)).to_have_value(OVERRIDE)
    expect(boxes.nth(1)).to_have_value("conf/movielens-100k.yaml")
    pg.get_by_role("button", name="Submit").click()
    # 3. the run, opened from the deployment's run list (by the name given above), completes
    expect(pg).to_have_url(re.compile(r".*/deployments/deployment/[0-9a-f-]+(\?.*)?$"))
    pg.get_by_role("link", name=run_name, exact=True).first.click(timeout=120_000)
    expect(pg).to_have_url(re.compile(r".*/runs/flow-run/[0-9a-f-]+"))
    expect(pg.get_by_text(run_name).first).to_be_visible()
    badge = pg.locator(".state-badge").first
    expect(badge).to_have_text(re.compile(r"Completed|Failed|Crashed|Cancelled"), timeout=RUN_TIMEOUT_MS)
    shot = _artifact_dir() / f"ui-{STAGE}-run.png"
    pg.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of the finished run: {shot}")
    assert badge.inner_text().strip() == "Completed", f"run ended {badge.inner_text()!r}; see {shot}\n" \
        + stack.worker_log()[-4000:]
    run_url = pg.url
    # 4. every expected artifact is listed on the run and opens
    for key, text in ARTIFACTS.items():
        pg.goto(run_url)
        pg.get_by_text("Artifacts", exact=True).first.click()
        pg.locator("a[href*='/artifacts/artifact/']", has_text=key).first.click()
        expect(pg).to_have_url(re.compile(r".*/artifacts/artifact/[0-9a-f-]+"))
        expect(pg.get_by_text(text).first).to_be_visible()
        pg.screenshot(path=str(_artifact_dir() / f"ui-artifact-{key}.png"), full_page=True)
    # 5. the override reached the stage: K rows per user were published
    assert f"ROW ({943 * K}, 943)" in sql(stack, "SELECT count(*), count(DISTINCT user_id) FROM recommendations")
