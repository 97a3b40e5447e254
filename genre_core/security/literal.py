"""Print untrusted data literally: control characters escaped, no rich markup, spreadsheet formulas defused."""
from __future__ import annotations

import re
from typing import Any

# C0/C1 control characters (ESC, BEL, CR, ...) and the bidi overrides that can reorder what a terminal shows.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV-injection rule


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """``"\\x1b[31m"`` -> ``"\\\\x1b[31m"``: every control character shown as a Python escape; tab kept as ``\\t``.

    Newlines are escaped too unless ``keep_newlines`` (a table cell stays on one line).
    """
    out = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    if not keep_newlines:
        out = out.replace("\n", "\\n").replace("\t", "\\t")
    return out


def cell(value: Any) -> str:
    """One value as the text a terminal table shows: None -> "", control characters escaped."""
    return "" if value is None else escape_controls(str(value))


def rich_text(value: Any):  # noqa: ANN201 - rich.text.Text, imported lazily
    """A rich ``Text`` that is never parsed as markup (``[/b]`` prints as ``[/b]``)."""
    from rich.text import Text  # noqa: PLC0415

    return Text(cell(value))


def csv_cell(value: Any) -> Any:
    """A value for ``--csv``: strings that a spreadsheet would run as a formula get a leading ``'``.

    Numbers (int/float from the database) are written as they are, so ``-1.5`` stays a number; only text cells
    starting with ``= + - @``, tab or CR are prefixed (OWASP CSV injection guidance). Control characters other
    than newline and tab are written escaped (``\\x1b``), as in the table output.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return escape_controls(value, keep_newlines=True)  # no terminal escapes either; newlines stay (quoted)
