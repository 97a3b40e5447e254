"""Text cleaning applied to every free-text field before it reaches the warehouse."""
from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]{0,500}>")
_WS = re.compile(r"\s+")


def clean_text(value: str | None) -> str | None:
    """Unicode NFKC, HTML tags stripped and entities unescaped, whitespace collapsed; empty -> None."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value))
    text = html.unescape(_TAG.sub(" ", text))
    text = _WS.sub(" ", text).strip()
    return text or None
