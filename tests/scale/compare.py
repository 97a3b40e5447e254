"""Comparing two published runs of the same model: equal top-K up to float32 rounding of the scores.

Scores computed with a different number of threads (a Dask worker has one, the local process several) may
differ in the last bits, because BLAS splits small reductions across threads; two items whose scores are that
close may then swap. Everything else must be identical.
"""
from __future__ import annotations

import numpy as np
import polars as pl


def top_k_differences(a: pl.DataFrame, b: pl.DataFrame, id_col: str = "user_id", item_col: str = "item_id",
                      rtol: float = 1e-5, atol: float = 1e-5) -> tuple[int, list[str]]:
    """(rows whose item differs, problems) for two frames of (id, rank, item, score).

    A differing item is accepted only as a near-tie: in each run, the other run's item has (nearly) the same score
    or the row sits at the list's boundary with (nearly) the same score as the last item. Problems name anything
    else: different keys, scores off by more than the tolerance, unexplained item differences.
    """
    problems: list[str] = []
    keys = [id_col, "rank"]
    a, b = a.sort(keys), b.sort(keys)
    if not a.select(keys).equals(b.select(keys)):
        return -1, [f"different (id, rank) keys: {a.height} vs {b.height} rows"]
    sa, sb = a["score"].to_numpy(), b["score"].to_numpy()
    if not np.allclose(sa, sb, rtol=rtol, atol=atol):
        worst = int(np.argmax(np.abs(sa - sb)))
        problems.append(f"scores differ beyond tolerance, e.g. {a.row(worst)} vs {b.row(worst)}")
    diff = a.with_columns(b[item_col].alias("_other"), b["score"].alias("_other_score")).filter(
        pl.col(item_col) != pl.col("_other"))
    lists = {run: {k: dict(zip(g[item_col].to_list(), g["score"].to_list(), strict=True))
                   for (k,), g in f.group_by(id_col)} for run, f in (("a", a), ("b", b))}
    for row in diff.iter_rows(named=True):
        uid, score, other_score = row[id_col], row["score"], row["_other_score"]
        for mine, theirs, s in ((row[item_col], "b", score), (row["_other"], "a", other_score)):
            their = lists[theirs][uid]
            ref = their.get(mine, min(their.values()))  # absent: it must tie with their last item
            if not np.isclose(s, ref, rtol=rtol, atol=atol):
                problems.append(f"{id_col}={uid} rank={row['rank']}: {row[item_col]} vs {row['_other']} is not a tie "
                                f"({s} vs {ref})")
    return diff.height, problems
