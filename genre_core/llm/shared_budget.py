"""An LLM budget that holds across concurrent runs on one GENRE_HOME.

Each run admits generations through a ledger file (``$GENRE_HOME/llm_budget.json``, under an ``flock``) that
records what every *running* enrich process has reserved (worst-case tokens). A run sees the calls and tokens
reserved by the other live runs as already spent, so two runs started together share one ``llm.max_calls`` /
``llm.max_tokens`` instead of spending it twice. Entries of finished (or dead) processes are dropped, so
sequential runs each get the whole per-run budget as before.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genre_core.llm.runner import Budget
from genre_core.locking import file_lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SharedBudget(Budget):
    """``Budget`` whose limits count the reservations of every live run recorded in ``ledger``."""

    ledger: Path | None = None
    key: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex[:8]}")

    def _read(self) -> dict[str, dict[str, int]]:
        assert self.ledger is not None
        try:
            data = json.loads(self.ledger.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            data = {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and _alive(int(v.get("pid", 0)))}

    def _write(self, data: dict[str, dict[str, int]]) -> None:
        assert self.ledger is not None
        tmp = self.ledger.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.ledger)

    def admit(self, costs: Sequence[int]) -> int:
        """As ``Budget.admit``, counting what the other live runs reserved; reserves what it admits."""
        if self.ledger is None:
            return super().admit(costs)
        with file_lock(self.ledger.with_suffix(".lock")):
            data = self._read()
            others = [v for k, v in data.items() if k != self.key]
            own_calls, own_tokens = self.calls, self.tokens
            self.calls += sum(int(v["calls"]) for v in others)
            self.tokens += sum(int(v["tokens"]) for v in others)
            try:
                n = super().admit(costs)
            finally:
                self.calls, self.tokens = own_calls, own_tokens
            entry = data.get(self.key, {"pid": os.getpid(), "calls": 0, "tokens": 0})
            entry["calls"] = int(entry["calls"]) + n
            entry["tokens"] = int(entry["tokens"]) + int(sum(costs[:n]))
            data[self.key] = entry
            self._write(data)
        return n

    def release(self) -> None:
        """Drop this run's reservation (the run is over)."""
        if self.ledger is None:
            return
        with file_lock(self.ledger.with_suffix(".lock")):
            data = self._read()
            data.pop(self.key, None)
            self._write(data)
