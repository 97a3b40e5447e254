"""Compatibility shims that let RecBole 1.2.1 run on NumPy 2 and SciPy 1.17 (used by bench.peers only).

RecBole 1.2.1 (2023) still uses NumPy aliases removed in NumPy 2.0 (``np.float``, ``np.float_``, ...) in its
evaluator and layers, and ``scipy.sparse.dok_matrix._update`` (removed in SciPy 1.12) to build the adjacency
matrices of its graph models. ``install()`` puts back exactly what it needs and nothing else; it is idempotent
and changes nothing that exists.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

#: NumPy aliases removed in 2.0 that RecBole 1.2.1 references, with their old meaning
NUMPY_ALIASES: dict[str, Any] = {
    "float": float, "int": int, "bool": bool, "object": object, "str": str,
    "float_": np.float64, "complex_": np.complex128, "unicode_": np.str_, "long": np.int_,
}


def _dok_update(self: sp.dok_matrix, data: dict[tuple[int, int], Any]) -> None:
    """SciPy < 1.12's private bulk setter: ``{(row, col): value}`` written without per-key checks."""
    store = getattr(self, "_dict", None)
    if isinstance(store, dict):
        store.update(data)
    else:  # older layouts: the matrix is the dict
        dict.update(self, data)


def install() -> list[str]:
    """Add the missing aliases and ``dok_matrix._update``; returns what was added (empty when nothing was)."""
    added = []
    for name, value in NUMPY_ALIASES.items():
        try:
            getattr(np, name)
        except AttributeError:
            setattr(np, name, value)
            added.append(f"numpy.{name}")
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update  # type: ignore[attr-defined]
        added.append("scipy.sparse.dok_matrix._update")
    return added
