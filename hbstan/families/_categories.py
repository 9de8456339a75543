"""What the families of categories (``cumulative``, ``categorical``) share: category numbers."""

from __future__ import annotations

import numpy as np

from ..design import DataError

__all__ = ["category_numbers"]


def category_numbers(y: np.ndarray, name: str, family: str, first: str, hint: str) -> list[str]:
    """Check a response of whole category numbers from 1 and return their labels "1".."K".

    Raises a located :class:`DataError` when some rows hold anything else; ``first`` says what
    category 1 is for the family ("the lowest", "the reference") and ``hint`` how else the
    response may be given.
    """
    bad = np.flatnonzero((y != np.round(y)) | (y < 1))
    if bad.size:
        raise DataError(
            f"response {name!r} must hold category numbers 1, 2, ..., K for family={family!r} "
            f"(1 {first} category); rows {bad[:5].tolist()} have {y[bad[:5]].tolist()}. Recode "
            f"them as whole numbers from 1 (e.g. y - y.min() + 1 for 0-based codes), or {hint}"
        )
    return [str(k) for k in range(1, int(y.max()) + 1)]
