"""GitHub Markdown tables of pandas DataFrames (pandas' own ``to_markdown`` needs tabulate).

One writer for every report hbstan prints as Markdown (:class:`hbstan.compare.BackendComparison`,
:class:`hbstan.pooling.PoolingComparison`): a header, a right-aligned numeric column or a
left-aligned other one, and each cell as the caller formats it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["markdown_table"]


def markdown_table(df: pd.DataFrame, cell: Callable[[str, Any], str], *, index: bool = False) -> list[str]:
    """Write the rows of ``df`` as GitHub Markdown lines.

    ``cell(column, value)`` writes one cell; ``|`` in column names is escaped here (the cell
    writer escapes its own text). With ``index=True`` the index is the first column, headed by
    its name. Numeric columns (not booleans) are right-aligned.
    """
    if index:
        df = df.reset_index(names=str(df.index.name or ""))
    cols = [str(c) for c in df.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) and not (index and k == 0)
        for k, c in enumerate(df.columns)
    ]
    out = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |"]
    out.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    for row in df.itertuples(index=False):
        out.append("| " + " | ".join(cell(c, v) for c, v in zip(cols, row, strict=True)) + " |")
    return out
