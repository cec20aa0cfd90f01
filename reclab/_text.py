"""Numbers as reclab's reports print them, shared by the results' ``__str__`` (evaluation,
simulated online tests) and the stage notebooks' summaries (through :mod:`reclab.summary`)."""

from __future__ import annotations

__all__ = ["p_text"]


def p_text(p: float, digits: int = 3, spaced: bool = False) -> str:
    """``"p=0.0123"`` (``digits`` significant digits; ``"p = ..."`` when ``spaced``), or
    ``"p<1e-300"`` for a p-value that underflowed to 0: it is smaller than any float can hold,
    not zero (an A/B test of the oracle against Popularity on 5,000 users)."""
    equals, below = (" = ", " < ") if spaced else ("=", "<")
    return f"p{below}1e-300" if p == 0 else f"p{equals}{p:.{digits}g}"
