"""Reading delimited files into raw string records, keeping each record's line number and original text.

Every physical problem with a record (undecodable bytes, wrong field count, truncated last line) becomes a
row-level reject with a reason; problems with the whole file (missing, empty, unreadable) raise.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

REJECT_SCHEMA = {"row_number": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8, "raw": pl.Utf8}


class SourceError(ValueError):
    """A source file that cannot be read as a whole (missing, empty, wrong layout)."""


@dataclass
class RawTable:
    """String records of one source file.

    ``records`` has the named string columns plus ``_row`` (1-based line number of the record) and ``_raw``
    (the original text); ``rejects`` holds records refused while parsing (row_number, rule, detail, raw).
    """

    path: Path
    sha256: str
    records: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))

    @property
    def rows_in(self) -> int:
        return self.records.height + self.rejects.height


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; a missing path, a FIFO or a device raises SourceError (never blocks)."""
    from genre_core.security.paths import UnsafePath, open_regular  # noqa: PLC0415

    try:
        with open(open_regular(path, None), "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found") from None
    except UnsafePath as exc:
        raise SourceError(f"{path}: {exc}") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def enc_is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8lossy", "utf8sig")


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_delimited(
    path: Path,
    columns: list[str],
    *,
    separator: str,
    encoding: str = "utf8",
    has_header: bool = False,
    quoting: bool = False,
    min_fields: int | None = None,
) -> RawTable:
    """Read ``path`` into a RawTable with one string column per name in ``columns``.

    Without a header the fields map to ``columns`` by position and a record must have ``len(columns)`` fields
    (or at least ``min_fields``, missing trailing fields become empty). With a header, ``columns`` must all be
    present in it (extra source columns are ignored). Raises SourceError for a missing/empty file or header.
    """
    path = Path(path)
    data = read_regular(path)
    if data.startswith(b"\xef\xbb\xbf") and enc_is_utf8(encoding):
        data_text = data[3:]  # a UTF-8 byte-order mark is not part of the first field (the checksum keeps it)
    else:
        data_text = data
    if not data.strip():
        raise SourceError(f"{path}: file is empty")
    enc = "utf-8" if encoding.lower().replace("-", "") in ("utf8", "utf8lossy") else encoding
    try:
        text = data_text.decode(enc, errors="surrogateescape") if enc == "utf-8" else data_text.decode(enc, errors="replace")
    except LookupError:
        raise SourceError(f"{path}: unknown text encoding {encoding!r}") from None
    ends_with_newline = text.endswith(("\n", "\r"))
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=separator,
        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
        strict=False,
    )
    index: list[int]
    if has_header:
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{path}: file is empty") from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise SourceError(f"{path}: header {header} lacks required column(s) {missing}")
        index = [header.index(c) for c in columns]
        n_expected = len(header)
    else:
        index = list(range(len(columns)))
        n_expected = len(columns)
    out: dict[str, list[str]] = {c: [] for c in columns}
    rows: list[int] = []
    raws: list[str] = []
    rejects: list[tuple[int, str, str, str]] = []
    parsed: list[tuple[int, list[str]]] = []
    prev_end = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): that record only is rejected
            rejects.append((prev_end + 1, "field_too_large" if "field larger" in str(exc) else "csv_syntax",
                            f"{exc} (csv.field_size_limit() = {csv.field_size_limit()} characters)",
                            f"<{reader.line_num - prev_end} line(s) not kept: {exc}>"))
            prev_end = reader.line_num
            continue
        parsed.append((prev_end + 1, fields))  # (first physical line of the record, its fields)
        prev_end = reader.line_num
    n_records = len(parsed)
    for i, (first_line, fields) in enumerate(parsed):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line: not a record
        raw = separator.join(fields)
        if _has_surrogates(raw):
            rejects.append((first_line, "encoding", f"invalid {encoding} bytes", raw.encode("utf-8", "backslashreplace").decode()))
            continue
        is_last = i == n_records - 1
        bad = len(fields) < min_fields if min_fields is not None else len(fields) != n_expected
        if is_last and not ends_with_newline and not bad:
            # the file ends inside this record: even if what is left parses, a field may be cut short
            rejects.append((first_line, "truncated", "last line has no final newline: the file may be cut "
                            "mid-field (e.g. a partial copy); add the newline if the line is complete", raw))
            continue
        if bad:
            if is_last and not ends_with_newline and len(fields) < n_expected:
                rule, detail = "truncated", f"last line is truncated: {len(fields)} of {n_expected} fields and no final newline"
            else:
                rule, detail = "field_count", f"expected {n_expected} fields separated by {separator!r}, got {len(fields)}"
            rejects.append((first_line, rule, detail, raw))
            continue
        for c, j in zip(columns, index):
            out[c].append(fields[j] if j < len(fields) else "")
        rows.append(first_line)
        raws.append(raw)
    frame = pl.DataFrame({**{c: pl.Series(c, v, dtype=pl.Utf8) for c, v in out.items()},
                          "_row": pl.Series("_row", rows, dtype=pl.Int64), "_raw": pl.Series("_raw", raws, dtype=pl.Utf8)})
    rej = pl.DataFrame(rejects, schema=REJECT_SCHEMA, orient="row")
    return RawTable(path=path, sha256=hashlib.sha256(data).hexdigest(), records=frame, rejects=rej)
