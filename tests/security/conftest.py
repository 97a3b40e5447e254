"""Fixtures of the adversarial suite: a real installation (data dir, GENRE_HOME, config) driven by the CLI."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.security.shop import Shop, copy_shop, make_shop

EVIL_TITLE = "[/b][bold red]Evil\x1b[31m\x07 red"


@pytest.fixture(scope="session")
def ingested_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Shop, subprocess.CompletedProcess[str]]:
    """A shop whose first title carries rich markup and terminal escapes, ingested once per session through the
    CLI. Tests never use it directly (they get a copy from ``ingested``), so it stays as ingested."""
    shop = make_shop(tmp_path_factory.mktemp("shop"), title=EVIL_TITLE)
    proc = shop.genre("ingest", "--direct")
    assert proc.returncode == 0, proc.stderr
    return shop, proc


@pytest.fixture(scope="module")
def ingested(ingested_template, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shop, subprocess.CompletedProcess[str]]:
    """This module's own copy of the session's ingested shop (a module that trains or re-ingests on it does not
    change what another module sees), without a second ingest."""
    shop, proc = ingested_template
    return copy_shop(shop, tmp_path_factory.mktemp("shop")), proc
