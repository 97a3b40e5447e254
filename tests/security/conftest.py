"""Fixtures of the adversarial suite: a real installation (data dir, GENRE_HOME, config) driven by the CLI."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.security.shop import Shop, make_shop

EVIL_TITLE = "[/b][bold red]Evil\x1b[31m\x07 red"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Shop, subprocess.CompletedProcess[str]]:
    """A shop whose first title carries rich markup and terminal escapes, ingested once through the CLI."""
    shop = make_shop(tmp_path_factory.mktemp("shop"), title=EVIL_TITLE)
    proc = shop.genre("ingest", "--direct")
    assert proc.returncode == 0, proc.stderr
    return shop, proc
