"""Apply the stored best parameters over the config before ``genre train`` (``tune.use_tuned``).

Precedence, per parameter of ``train.<model>``: an explicit ``--set`` wins, then the tuned value stored in
``tuned_params`` for (``dataset.name``, model), then the config files. ``apply_tuned`` says where each value
came from, so the train run can log it.
"""
from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from genre_core.config import GenreConfig, explicit_overrides
from genre_core.tuning.config import section_fields, with_section
from genre_core.tuning.store import TABLE, load_tuned

log = logging.getLogger("genre.tune")


def _pinned(key: str, pinned: list[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in pinned)


def apply_tuned(cfg: GenreConfig, models: list[str] | None = None) -> tuple[GenreConfig, dict[str, dict[str, str]]]:
    """(config with the stored tuned parameters applied, {model: {param: source}}) for ``models`` (default:
    ``train.models``, plus the members of a blend in it). Sources: ``"--set"``,
    ``"tuned (trial N, <metric>=<value>, <date>)"`` or ``"config"``.
    Returns ``cfg`` itself when ``tune.use_tuned`` is false or nothing is stored. A stored value the current
    schema rejects raises ValueError naming the table row and parameter."""
    if not cfg.tune.use_tuned:
        return cfg, {}
    names = list(cfg.train.models if models is None else models)
    if "blend" in names:  # the blend builds its members from their sections: they get the tuned values too
        names += [m for m in cfg.train.blend.members if m not in names]
    stored = load_tuned(cfg, names)
    if not stored:
        return cfg, {}
    pinned = explicit_overrides(cfg)
    out = cfg
    sources: dict[str, dict[str, str]] = {}
    for model, tp in sorted(stored.items()):
        fields = section_fields(model)
        if fields is None:
            continue
        values: dict[str, Any] = {}
        label = f"tuned (trial {tp.trial_number}, valid {tp.metric}={tp.value:.4f}, {tp.tuned_at:%Y-%m-%d %H:%M})"
        src = {f: ("--set" if _pinned(f"train.{model}.{f}", pinned) else "config") for f in fields}
        for param, value in tp.params.items():
            if param not in fields:
                log.warning("%s (%s, %s): stored parameter %r is no longer part of train.%s; ignored",
                            TABLE, tp.dataset, model, param, model)
            elif src[param] != "--set":
                values[param], src[param] = value, label
        try:
            out = with_section(out, model, values)
        except ValidationError as exc:
            raise ValueError(f"{TABLE} ({tp.dataset}, {model}): stored parameters do not fit train.{model} "
                             f"any more: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}; "
                             "re-run `genre tune` or set tune.use_tuned=false") from None
        sources[model] = src
        tuned = sorted(p for p, s in src.items() if s.startswith("tuned"))
        log.info("train.%s: %s from %s; %s", model, ", ".join(tuned) or "nothing", label,
                 ", ".join(f"{p} from --set" for p, s in src.items() if s == "--set") or "no --set")
    return out, sources
