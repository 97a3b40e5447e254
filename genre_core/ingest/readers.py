"""Dataset readers: MovieLens 100K (+ optional TMDB side info), MIND, and a generic CSV/Parquet layout.

Each reader returns ``EntityBatch``es in dependency order (items, users, interactions) with canonical string
columns; typing, validation and writing are shared (``genre_core.ingest.typing`` / ``validate`` / ``pipeline``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from genre_core.config import DatasetConfig, GenericReaderConfig, GenreConfig
from genre_core.ingest.clean import clean_text
from genre_core.ingest.registry import READERS, DatasetReader
from genre_core.ingest.raw import RawTable, SourceError, read_delimited, sha256_file
from genre_core.paths import fetched_datasets_dir, resolve_data_path

ML_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
ITEM_COLUMNS = ["item_id", "title", "text", "category", "image_path", "attributes"]
USER_COLUMNS = ["user_id", "attributes"]
INTERACTION_COLUMNS = ["user_id", "item_id", "event_type", "value", "ts", "is_history"]


@dataclass
class EntityBatch:
    """Canonical rows of one entity from one source file.

    ``frame`` holds the entity's canonical columns (strings; ``is_history`` boolean) plus ``_row``/``_raw``;
    ``raw`` keeps the file path, checksum and parse-level rejects. ``ts_format`` says how ``ts`` is written.
    """

    entity: str
    raw: RawTable
    frame: pl.DataFrame
    ts_format: str = "unix"
    users_from_interactions: bool = False  # no user file: users are created from the interactions


def _json_attrs(frame: pl.DataFrame, cols: list[str]) -> pl.Series:
    return pl.Series([json.dumps({c: row[c] for c in cols if row[c] not in (None, "")}, ensure_ascii=False)
                      for row in frame.select(cols).iter_rows(named=True)], dtype=pl.Utf8)


def _with_frame(raw: RawTable, frame: pl.DataFrame, entity: str, **kw: object) -> EntityBatch:
    return EntityBatch(entity=entity, raw=raw, frame=frame.with_columns(raw.records["_row"], raw.records["_raw"]), **kw)


def movielens_root(cfg: GenreConfig) -> Path:
    """The ml-100k folder: the configured path under the data dir, else a copy fetched into GENRE_HOME."""
    ds = cfg.dataset
    configured = resolve_data_path(cfg, ds.path)
    if configured is not None and (configured / "u.data").is_file():
        return configured
    fetched = fetched_datasets_dir() / "ml-100k"
    if (fetched / "u.data").is_file():
        return fetched
    if ds.fetch and ds.fetch_if_missing:
        from genre_core.ingest.fetch import fetch_dataset

        return fetch_dataset(ds.fetch)
    raise SourceError(f"MovieLens 100K not found at {configured} (dataset.path) nor {fetched}: "
                      "run `genre data fetch movielens-100k` or set GENRE_DATA_DIR")


def _tmdb_side_info(cfg: GenreConfig) -> tuple[pl.DataFrame | None, Path | None]:
    root = resolve_data_path(cfg, cfg.dataset.tmdb_path)
    if root is None or not (root / "items_tmdb.csv").is_file():
        return None, None
    side = pl.read_csv(root / "items_tmdb.csv", infer_schema=False, columns=["movie_id", "overview", "year"])
    side = side.unique(subset="movie_id", keep="first", maintain_order=True)  # the file repeats some rows
    return side.rename({"movie_id": "item_id"}), root / "posters"


def read_movielens(cfg: GenreConfig) -> list[EntityBatch]:
    root = movielens_root(cfg)
    genres = ML_GENRES
    if (root / "u.genre").is_file():
        names = [ln.split("|")[0] for ln in (root / "u.genre").read_text(encoding="latin-1").splitlines() if "|" in ln]
        genres = names or ML_GENRES
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + [f"g{i}" for i in range(len(genres))]
    raw_items = read_delimited(root / "u.item", cols, separator="|", encoding="latin-1")
    rec = raw_items.records
    flags = [f"g{i}" for i in range(len(genres))]
    category = pl.Series([
        "|".join(g for g, f in zip(genres, row) if f == "1") for row in rec.select(flags).iter_rows()
    ], dtype=pl.Utf8)
    items = pl.DataFrame({
        "item_id": rec["item_id"].str.strip_chars(),
        "title": rec["title"],
        "category": category,
        "attributes": _json_attrs(rec, ["release_date", "imdb_url"]),
    })
    side, posters = _tmdb_side_info(cfg)
    if side is not None:
        items = items.join(side.select("item_id", pl.col("overview").alias("text")), on="item_id", how="left")
        paths = [str(posters / f"{i}.jpg") if (posters / f"{i}.jpg").is_file() else None for i in items["item_id"]]
        items = items.with_columns(pl.Series("image_path", paths, dtype=pl.Utf8))
    else:
        items = items.with_columns(pl.lit(None, pl.Utf8).alias("text"), pl.lit(None, pl.Utf8).alias("image_path"))
    batches = [_with_frame(raw_items, items.select(ITEM_COLUMNS), "items")]
    if (root / "u.user").is_file():
        raw_users = read_delimited(root / "u.user", ["user_id", "age", "gender", "occupation", "zip"], separator="|")
        u = raw_users.records
        users = pl.DataFrame({"user_id": u["user_id"].str.strip_chars(),
                              "attributes": _json_attrs(u, ["age", "gender", "occupation", "zip"])})
        batches.append(_with_frame(raw_users, users, "users"))
    raw_ix = read_delimited(root / "u.data", ["user_id", "item_id", "value", "ts"], separator="\t")
    r = raw_ix.records
    ix = pl.DataFrame({"user_id": r["user_id"].str.strip_chars(), "item_id": r["item_id"].str.strip_chars(),
                       "event_type": pl.Series(["rating"] * r.height, dtype=pl.Utf8),
                       "value": r["value"].str.strip_chars(), "ts": r["ts"].str.strip_chars(),
                       "is_history": pl.Series([False] * r.height, dtype=pl.Boolean)})
    batches.append(_with_frame(raw_ix, ix, "interactions", ts_format="unix",
                               users_from_interactions=not (root / "u.user").is_file()))
    return batches


def read_mind(cfg: GenreConfig) -> list[EntityBatch]:
    root = resolve_data_path(cfg, cfg.dataset.path)
    assert root is not None
    cols = ["item_id", "category", "subcategory", "title", "abstract", "url", "title_entities", "abstract_entities"]
    raw_news = read_delimited(root / "news.tsv", cols, separator="\t", min_fields=5)
    n = raw_news.records
    items = pl.DataFrame({
        "item_id": n["item_id"], "title": n["title"], "text": n["abstract"],
        "category": n.select(pl.concat_str(["category", "subcategory"], separator="|")).to_series(),
        "image_path": pl.Series([None] * n.height, dtype=pl.Utf8),
        "attributes": _json_attrs(n, ["url"]),
    })
    raw_b = read_delimited(root / "behaviors.tsv", ["impression_id", "user_id", "time", "history", "impressions"],
                           separator="\t")
    events: dict[str, list] = {c: [] for c in INTERACTION_COLUMNS + ["_row", "_raw"]}
    seen_history: set[tuple[str, str]] = set()
    extra_rejects: list[tuple[int, str, str, str]] = []

    def add(user: str, item: str, etype: str, value: str, ts: str | None, hist: bool, row: int, raw: str) -> None:
        for k, v in zip(INTERACTION_COLUMNS + ["_row", "_raw"], (user, item, etype, value, ts, hist, row, raw)):
            events[k].append(v)

    for rec in raw_b.records.iter_rows(named=True):
        user, row, imp = rec["user_id"], rec["_row"], rec["impression_id"]
        for item in rec["history"].split():
            if (user, item) not in seen_history:  # history is repeated on each of a user's impressions
                seen_history.add((user, item))
                add(user, item, "click", "1", None, True, row, f"{imp}\thistory\t{item}")
        for entry in rec["impressions"].split():
            item, sep, label = entry.rpartition("-")
            if not sep or label not in ("0", "1") or not item:
                extra_rejects.append((row, "impression_format", f"impression entry {entry!r} is not <news_id>-<0|1>",
                                      f"{imp}\timpression\t{entry}"))
                continue
            add(user, item, "click" if label == "1" else "skip", label, rec["time"], False, row, f"{imp}\timpression\t{entry}")
    frame = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Boolean if k == "is_history" else pl.Int64 if k == "_row" else pl.Utf8)
                          for k, v in events.items()})
    rejects = pl.concat([raw_b.rejects, pl.DataFrame(extra_rejects, schema=raw_b.rejects.schema, orient="row")])
    events_raw = RawTable(path=raw_b.path, sha256=raw_b.sha256, records=frame.select("_row", "_raw"), rejects=rejects)
    return [
        _with_frame(raw_news, items, "items"),
        EntityBatch("interactions", events_raw, frame, ts_format="%m/%d/%Y %I:%M:%S %p", users_from_interactions=True),
    ]


def _read_generic_table(cfg: GenreConfig, rel: str, mapping: dict[str, str]) -> tuple[RawTable, pl.DataFrame]:
    g = cfg.dataset.generic
    assert g is not None
    root = resolve_data_path(cfg, cfg.dataset.path)
    path = (root / rel) if root is not None and not Path(rel).is_absolute() else Path(rel)
    src_cols = list(dict.fromkeys(mapping.values()))
    if g.format == "parquet":
        if not path.is_file():
            raise SourceError(f"{path}: file not found")
        try:
            df = pl.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - polars raises several types for a bad file
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
        missing = [c for c in src_cols if c not in df.columns]
        if missing:
            raise SourceError(f"{path}: columns {df.columns} lack required column(s) {missing}")
        nested = [f"{c} ({df.schema[c]})" for c in src_cols if df.schema[c].is_nested()]
        if nested:
            raise SourceError(f"{path}: column(s) {', '.join(nested)} are nested (struct/list); map flat columns, "
                              "or flatten them first (e.g. JSON-encode into a string column)")
        df = df.select([pl.col(c).cast(pl.Utf8) for c in src_cols])
        raws = [json.dumps(r, default=str) for r in df.iter_rows(named=True)]
        records = df.with_columns(pl.Series("_row", range(1, df.height + 1), dtype=pl.Int64), pl.Series("_raw", raws))
        raw = RawTable(path=path, sha256=sha256_file(path), records=records)
    else:
        raw = read_delimited(path, src_cols, separator=g.separator, encoding=g.encoding, has_header=g.has_header,
                             quoting=True)
    canon = pl.DataFrame({k: raw.records[v] for k, v in mapping.items()})
    return raw, canon


def read_generic(cfg: GenreConfig, g: GenericReaderConfig | None) -> list[EntityBatch]:
    if g is None:
        raise SourceError("dataset.reader is 'generic' but dataset.generic is not set")
    batches: list[EntityBatch] = []
    if g.items:
        raw, canon = _read_generic_table(cfg, g.items, g.item_columns)
        for c in ITEM_COLUMNS:
            if c not in canon.columns:
                canon = canon.with_columns(pl.lit(None if c != "attributes" else "{}", pl.Utf8).alias(c))
        batches.append(_with_frame(raw, canon.select(ITEM_COLUMNS), "items"))
    if g.users:
        raw, canon = _read_generic_table(cfg, g.users, g.user_columns)
        if "attributes" not in canon.columns:
            canon = canon.with_columns(pl.lit("{}").alias("attributes"))
        batches.append(_with_frame(raw, canon.select(USER_COLUMNS), "users"))
    raw, canon = _read_generic_table(cfg, g.interactions, g.columns)
    n = canon.height
    if "event_type" not in canon.columns:
        canon = canon.with_columns(pl.lit(g.event_type, pl.Utf8).alias("event_type"))
    if "value" not in canon.columns:
        canon = canon.with_columns(pl.lit("1", pl.Utf8).alias("value"))
    if "ts" not in canon.columns:
        canon = canon.with_columns(pl.lit(None, pl.Utf8).alias("ts"))
    canon = canon.with_columns(pl.Series("is_history", [False] * n, dtype=pl.Boolean))
    batches.append(_with_frame(raw, canon.select(INTERACTION_COLUMNS), "interactions", ts_format=g.timestamp_format,
                               users_from_interactions=g.users is None))
    return batches


@READERS.register("movielens")
class MovieLensReader(DatasetReader):
    """MovieLens 100K under ``dataset.path`` (+ TMDB side info under ``dataset.tmdb_path``)."""

    def read(self, cfg: GenreConfig, section: None) -> list[EntityBatch]:
        return read_movielens(cfg)


@READERS.register("mind")
class MindReader(DatasetReader):
    """MIND (behaviors.tsv + news.tsv) under ``dataset.path``."""

    def read(self, cfg: GenreConfig, section: None) -> list[EntityBatch]:
        return read_mind(cfg)


@READERS.register("generic")
class GenericReader(DatasetReader):
    """Any CSV/Parquet layout mapped by ``dataset.generic`` (see conf/examples/generic-csv.yaml)."""

    Config = GenericReaderConfig

    def read(self, cfg: GenreConfig, section: GenericReaderConfig | None) -> list[EntityBatch]:
        return read_generic(cfg, section)


def read_dataset(cfg: GenreConfig) -> list[EntityBatch]:
    """Run the configured reader. Raises SourceError for a file that cannot be read as a whole."""
    return READERS.get(cfg.dataset.reader)().read(cfg, cfg.dataset.section())


def clean_items(frame: pl.DataFrame) -> pl.DataFrame:
    """Clean free text (NFKC, HTML, whitespace) in the item columns."""
    return frame.with_columns([pl.col(c).map_elements(clean_text, return_dtype=pl.Utf8, skip_nulls=True)
                               for c in ("title", "text", "category")])


__all__ = ["EntityBatch", "read_dataset", "clean_items", "DatasetConfig", "READERS"]
