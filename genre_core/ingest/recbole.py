"""Reader for RecBole atomic files: ``<name>.inter``, ``<name>.item`` and an optional ``<name>.user``.

Atomic files are tab-separated with a typed header ``field:type`` per column, types ``token``, ``token_seq``,
``float`` and ``float_seq`` (RecBole's own names; ``_seq`` values hold several tokens or numbers separated by
``dataset.recbole.seq_separator``). Which fields are the user, item, time and rating is configured in
``dataset.recbole`` with RecBole's usual names as defaults, so any of RecBole's public datasets loads by
config alone. Records whose typed fields do not parse become rejects (rule ``value_type``) here; everything
else goes through the shared typing / GX validation / rejects path like the other readers.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import polars as pl
from pydantic import Field

from genre_core.config import GenreConfig, Strict
from genre_core.ingest.raw import RawTable, SourceError, read_delimited
from genre_core.ingest.readers import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, EntityBatch
from genre_core.ingest.registry import READERS, DatasetReader
from genre_core.paths import resolve_data_path

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")


class RecboleReaderConfig(Strict):
    """``dataset.recbole``: RecBole atomic files ``<name>.inter/.item/.user``; RecBole's usual field names."""

    name: str | None = None  # file stem; None: the one *.inter file in dataset.path
    user_field: str = "user_id"  # user id field of .inter (and .user)
    item_field: str = "item_id"  # item id field of .inter and .item
    time_field: str | None = "timestamp"  # unix seconds (integral floats accepted); used when present
    rating_field: str | None = "rating"  # interaction value when present in .inter, else 1
    event_type: str = "rating"  # event type written for every interaction
    title_fields: list[str] = Field(default_factory=lambda: ["title"])  # first non-empty one is the title
    text_fields: list[str] = Field(default_factory=list)  # joined as "name: value" sentences into items.text
    category_field: str | None = "categories"  # token/token_seq field -> items.category ("a|b")
    seq_separator: str = " "  # between tokens of *_seq fields (RecBole's seq_separator); ' quotes are stripped


def parse_header(path: Path) -> list[tuple[str, str]]:
    """The (name, type) of each column of an atomic file's header line. Raises SourceError naming the file and
    the column for a missing ``:type`` or an unknown type."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        line = fh.readline().rstrip("\r\n")
    if not line.strip():
        raise SourceError(f"{path}: empty header line (expected tab-separated 'name:type' columns)")
    out: list[tuple[str, str]] = []
    for i, col in enumerate(line.split("\t"), start=1):
        name, sep, typ = col.strip().rpartition(":")
        if not sep or not name:
            raise SourceError(f"{path}: header column {i} {col!r} is not 'name:type' "
                              f"(type one of {', '.join(FIELD_TYPES)})")
        if typ not in FIELD_TYPES:
            raise SourceError(f"{path}: header column {i} {col!r} has unknown type {typ!r}; valid: {', '.join(FIELD_TYPES)}")
        out.append((name, typ))
    if len({n for n, _ in out}) != len(out):
        raise SourceError(f"{path}: header names a field twice: {[n for n, _ in out]}")
    return out


def split_seq(value: str, separator: str) -> list[str]:
    """Tokens of a ``*_seq`` value: split on ``separator``, surrounding blanks and single quotes removed
    (``'Hair Care', 'Creams, Gels'`` with separator ``,`` gives two tokens)."""
    if not value.strip():
        return []
    row = next(csv.reader([value], delimiter=separator, quotechar="'", skipinitialspace=True))
    return [t.strip() for t in row if t.strip()]


def _bad_float(value: str, typ: str, separator: str) -> bool:
    parts = [value] if typ == "float" else split_seq(value, separator)
    for p in parts:
        if p.strip() == "":
            continue
        try:
            float(p)
        except ValueError:
            return True
    return False


def _read_atomic(path: Path, required: list[str], separator: str
                 ) -> tuple[RawTable, dict[str, str], pl.DataFrame]:
    """Read one atomic file; float fields are checked (unparsable -> reject ``value_type``). Returns (raw table,
    field name -> type, accepted records with plain field names (``user_id``, not ``user_id:token``) plus
    ``_row``/``_raw``)."""
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    header = parse_header(path)
    types = dict(header)
    missing = [f for f in required if f not in types]
    if missing:
        raise SourceError(f"{path}: header fields {list(types)} lack required field(s) {missing} "
                          "(set the field names under dataset.recbole)")
    typed_names = [f"{n}:{t}" for n, t in header]
    raw = read_delimited(path, typed_names, separator="\t", has_header=True, quoting=True)
    rec = raw.records.rename(dict(zip(typed_names, types)))
    bad: list[tuple[int, str, str, str]] = []
    keep = [True] * rec.height
    for name, typ in header:
        if not typ.startswith("float"):
            continue
        for j, (v, row, rawline) in enumerate(zip(rec[name], rec["_row"], rec["_raw"])):
            if keep[j] and _bad_float(v, typ, separator):
                keep[j] = False
                bad.append((row, "value_type", f"field {name} ({typ}) value {v!r} is not a number", rawline))
    rejects = raw.rejects
    if bad:
        rec = rec.filter(pl.Series(keep))
        rejects = pl.concat([rejects, pl.DataFrame(bad, schema=rejects.schema, orient="row")])
    return RawTable(path=raw.path, sha256=raw.sha256, records=rec.select("_row", "_raw"), rejects=rejects), types, rec


def _number_text(col: pl.Series) -> pl.Series:
    """Float text -> integer text where integral (``"12.0"`` -> ``"12"``) so unix timestamps parse."""
    out = []
    for v in col.to_list():
        try:
            f = float(v)
            out.append(str(int(f)) if math.isfinite(f) and f == int(f) else v)
        except (TypeError, ValueError):
            out.append(v)
    return pl.Series(col.name, out, dtype=pl.Utf8)


def _render(rec: pl.DataFrame, name: str, typ: str, rc: RecboleReaderConfig, joiner: str) -> list[str | None]:
    vals = rec[name].to_list()
    if typ.endswith("_seq"):
        return [joiner.join(split_seq(v, rc.seq_separator)) or None for v in vals]
    return [v.strip() or None for v in vals]


def _attributes(rec: pl.DataFrame, types: dict[str, str], used: set[str], rc: RecboleReaderConfig) -> pl.Series:
    cols = [c for c in types if c not in used and not c.startswith("_")]
    rendered = {c: _render(rec, c, types[c], rc, "|") for c in cols}
    return pl.Series("attributes", [json.dumps({c: rendered[c][j] for c in cols if rendered[c][j] is not None},
                                               ensure_ascii=False) for j in range(rec.height)], dtype=pl.Utf8)


def _first_present(rec: pl.DataFrame, fields: list[str], types: dict[str, str], rc: RecboleReaderConfig,
                   labelled: bool) -> pl.Series:
    """Per row: the first non-empty of ``fields`` (``labelled=False``) or all non-empty ones joined as
    ``name: value. name: value`` (``labelled=True``); None when all are empty."""
    cols = [(f, _render(rec, f, types[f], rc, ", ")) for f in fields if f in types]
    out: list[str | None] = []
    for j in range(rec.height):
        present = [(f, v[j]) for f, v in cols if v[j]]
        if labelled:
            out.append(". ".join(f"{f.replace('_', ' ')}: {v}" for f, v in present) or None)
        else:
            out.append(present[0][1] if present else None)
    return pl.Series(out, dtype=pl.Utf8)


def read_recbole(cfg: GenreConfig, rc: RecboleReaderConfig) -> list[EntityBatch]:
    """Items (``.item``), users (``.user`` when present) and interactions (``.inter``) as EntityBatches.

    items: title = first non-empty of ``title_fields``, text = ``text_fields`` as ``name: value`` sentences,
    category = ``category_field`` tokens joined by ``|``, attributes = every other field (JSON).
    interactions: value = ``rating_field`` (1 where absent), ts = ``time_field`` (unix seconds; integral
    floats accepted), event type ``event_type``.
    """
    root = resolve_data_path(cfg, cfg.dataset.path)
    if root is None or not root.is_dir():
        raise SourceError(f"dataset.path {cfg.dataset.path!r}: folder not found (resolved to {root})")
    stem = rc.name
    if stem is None:
        found = sorted(root.glob("*.inter"))
        if len(found) != 1:
            raise SourceError(f"{root}: expected exactly one *.inter file, found {[p.name for p in found]}; "
                              "set dataset.recbole.name")
        stem = found[0].stem
    batches: list[EntityBatch] = []
    item_path = root / f"{stem}.item"
    if item_path.is_file():
        raw, types, rec = _read_atomic(item_path, [rc.item_field], rc.seq_separator)
        used = {rc.item_field, *rc.title_fields, *rc.text_fields, *([rc.category_field] if rc.category_field else [])}
        frame = pl.DataFrame({
            "item_id": rec[rc.item_field],
            "title": _first_present(rec, rc.title_fields, types, rc, labelled=False),
            "text": _first_present(rec, rc.text_fields, types, rc, labelled=True),
            "category": (pl.Series(_render(rec, rc.category_field, types[rc.category_field], rc, "|"), dtype=pl.Utf8)
                         if rc.category_field in types else pl.Series([None] * rec.height, dtype=pl.Utf8)),
            "image_path": pl.Series([None] * rec.height, dtype=pl.Utf8),
            "attributes": _attributes(rec, types, used, rc),
        })
        batches.append(EntityBatch("items", raw, frame.select(ITEM_COLUMNS).with_columns(rec["_row"], rec["_raw"])))
    user_path = root / f"{stem}.user"
    if user_path.is_file():
        raw, types, rec = _read_atomic(user_path, [rc.user_field], rc.seq_separator)
        frame = pl.DataFrame({"user_id": rec[rc.user_field], "attributes": _attributes(rec, types, {rc.user_field}, rc)})
        batches.append(EntityBatch("users", raw, frame.select(USER_COLUMNS).with_columns(rec["_row"], rec["_raw"])))
    raw, types, rec = _read_atomic(root / f"{stem}.inter", [rc.user_field, rc.item_field], rc.seq_separator)
    n = rec.height
    value = rec[rc.rating_field] if rc.rating_field and rc.rating_field in types else pl.Series(["1"] * n)
    ts = (_number_text(rec[rc.time_field]) if rc.time_field and rc.time_field in types
          else pl.Series([None] * n, dtype=pl.Utf8))
    frame = pl.DataFrame({"user_id": rec[rc.user_field], "item_id": rec[rc.item_field],
                          "event_type": pl.Series([rc.event_type] * n, dtype=pl.Utf8),
                          "value": value.alias("value"), "ts": ts.alias("ts"),
                          "is_history": pl.Series([False] * n, dtype=pl.Boolean)})
    batches.append(EntityBatch("interactions", raw, frame.select(INTERACTION_COLUMNS).with_columns(rec["_row"], rec["_raw"]),
                               ts_format="unix", users_from_interactions=not user_path.is_file()))
    return batches


@READERS.register("recbole")
class RecboleReader(DatasetReader):
    """RecBole atomic files; settings in ``dataset.recbole`` (absent: RecBole's usual field names)."""

    Config = RecboleReaderConfig

    def read(self, cfg: GenreConfig, section: RecboleReaderConfig | None) -> list[EntityBatch]:
        return read_recbole(cfg, section if section is not None else RecboleReaderConfig())
