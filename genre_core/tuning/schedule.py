"""When the nightly re-tunes: never tuned, ``tune.every_days`` elapsed, or data grew by ``tune.when_data_grew``."""
from __future__ import annotations

from datetime import datetime

from genre_core.tuning.config import TuneConfig
from genre_core.tuning.store import TunedParams


def retune_reason(tc: TuneConfig, stored: TunedParams | None, rows_now: int, now: datetime) -> str | None:
    """Why model ``stored.model`` should be tuned again, or None to reuse the stored parameters.

    ``rows_now``: interactions in the warehouse now; ``now``: naive UTC time (as DuckDB stores ``tuned_at``)."""
    if stored is None:
        return "never tuned on this dataset"
    if tc.every_days is not None:
        age = (now - stored.tuned_at).total_seconds() / 86_400
        if age >= tc.every_days:
            return f"stored result is {age:.1f} days old (tune.every_days={tc.every_days:g})"
    if tc.when_data_grew is not None and stored.data_rows > 0:
        grew = rows_now / stored.data_rows - 1.0
        if grew >= tc.when_data_grew:
            return (f"interactions grew by {100 * grew:.1f}% since tuning ({stored.data_rows} -> {rows_now}; "
                    f"tune.when_data_grew={tc.when_data_grew:g})")
    return None
