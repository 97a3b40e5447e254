"""Prefect artifacts that show what a stage did (markdown / tables in the UI)."""
from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from genre_core.security.redact import redact, redact_mapping


def markdown(key: str, text: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=redact(text), description=description)  # no secret leaves


def table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    if rows:
        create_table_artifact(key=key, table=[redact_mapping(r) for r in rows], description=description)


def md_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of ``rows`` (list of dicts with the same keys)."""
    if not rows:
        return "_(none)_"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
