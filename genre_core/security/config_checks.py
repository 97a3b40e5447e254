"""Cross-field checks run when the config loads (``load_config``), so these mistakes fail before any work:
credentials in a value, an unknown text encoding, a champion metric that training never computes, and a
``train.register_model`` that ``train.models`` does not train."""
from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING

from genre_core.security.redact import credential_problems

if TYPE_CHECKING:
    from genre_core.config import GenreConfig

_METRIC = re.compile(r"^(?:(?P<slice>cold_item|cold_user)\.)?(?:(?P<name>recall|ndcg|hitrate|coverage)@(?P<k>\d+)"
                     r"|(?P<plain>mrr|auc))$")


def _flat(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif isinstance(v, list):
            out += [(f"{prefix}{k}[{i}]", x) for i, x in enumerate(v)]
        else:
            out.append((f"{prefix}{k}", v))
    return out


def encoding_problem(encoding: str) -> str | None:
    """None when Python knows ``encoding`` (or it is ``utf8-lossy``), else the reason."""
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8lossy"):
        return None
    try:
        codecs.lookup(encoding)
    except LookupError:
        return f"unknown text encoding {encoding!r} (use a Python codec name such as utf8, latin-1, cp1252)"
    return None


def config_problems(cfg: GenreConfig) -> list[str]:
    """Every problem found, each as ``"<key.path>: <what is wrong>"``; empty when the config is usable."""
    problems = credential_problems(_flat(cfg.model_dump(mode="json")))
    g = cfg.dataset.generic
    if g is not None and (why := encoding_problem(g.encoding)):
        problems.append(f"dataset.generic.encoding: {why}")
    metric = cfg.tracking.champion_metric
    m = _METRIC.match(metric)
    ks = sorted(set(cfg.train.k_values) | {10, 20})
    if m is None or (m["k"] is not None and int(m["k"]) not in ks):
        problems.append(f"tracking.champion_metric: {metric!r} is not a metric training computes; valid: "
                        f"recall@K, ndcg@K, hitrate@K, coverage@K with K in {ks}, mrr, auc, optionally "
                        "prefixed by cold_item. or cold_user.")
    reg = cfg.train.register_model
    if reg is not None and reg not in cfg.train.models:
        problems.append(f"train.register_model: {reg!r} is not trained (train.models = {cfg.train.models}); "
                        "add it to train.models or set train.register_model to null")
    return problems
