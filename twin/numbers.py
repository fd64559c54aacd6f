"""Numbers as people read them, for the console and the report (one place, so both agree)."""

from __future__ import annotations


def count(n: int | float) -> str:
    """7043 -> '7,043'."""
    return f"{int(n):,}"


def percent(share: float, digits: int = 1) -> str:
    """0.2654 -> '26.5%'."""
    return f"{100 * share:.{digits}f}%"


def score(x: float) -> str:
    """A metric in [0, 1] (ROC-AUC, F1, a probability): three decimals."""
    return f"{x:.3f}"


def times(x: float) -> str:
    """A ratio to random (lift): '2.95×'."""
    return f"{x:.2f}×"


def seconds(s: float) -> str:
    """0.004 -> '<0.1 s', 2.63 -> '2.6 s', 75 -> '1 min 15 s'."""
    if s < 0.05:
        return "<0.1 s"
    if s < 60:
        return f"{s:.1f} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes} min {rest} s"


def rate(per_second: float) -> str:
    """62925.3 -> '62,925 rows/s'."""
    return f"{per_second:,.0f} rows/s"


def difference(x: float) -> str:
    """A numerical difference: '0' when exactly equal, else two significant digits ('3.1e-07')."""
    return "0" if x == 0 else f"{x:.2g}"
