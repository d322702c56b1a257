"""Capped free-float market-cap weighting (the fixed convention of docs/conventions.md, capping).

With market caps ``m_i > 0`` and a cap ``c`` the weights are ``w_i = min(c, k * m_i)`` with
``k`` chosen so that the weights sum to 1. This is exactly where iterative redistribution of the
excess in proportion to the uncapped names converges; the Rust core computes it directly.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab import _core
from indexlab._checks import numeric_array
from indexlab.errors import DataError

__all__ = ["cap_weights", "capping_factors"]

_POSITION = re.compile(r"(market_caps|caps)\[(\d+)\]")


def _as_float_array(values: Any, name: str) -> npt.NDArray[np.float64]:
    # Text ("1.5") and booleans are not market caps, even where numpy would convert them.
    arr = numeric_array(values, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _as_cap(cap: Any) -> float:
    if isinstance(cap, (bool, np.bool_)) or not isinstance(
        cap, (int, float, np.integer, np.floating)
    ):
        raise DataError(f"cap must be a number in (0, 1], got {cap!r} ({type(cap).__name__})")
    return float(cap)


def _labelled(err: DataError, labels: Any) -> DataError:
    """Replace ``market_caps[3]`` in a core message by the Series label the user knows."""
    if labels is None:
        return err
    text = _POSITION.sub(lambda m: f"{m.group(1)}[{labels[int(m.group(2))]!r}]", str(err))
    return DataError(text)


def cap_weights(market_caps: Any, cap: float = 0.08, caps: Any = None) -> Any:
    """Capped weights ``w_i = min(c_i, k * m_i)`` that sum to 1.

    Parameters
    ----------
    market_caps
        Free-float market caps, finite and > 0 (array-like or pandas Series).
    cap
        The cap for every name, in (0, 1]. The Hang Seng TECH Index uses 8%.
    caps
        Optional per-name caps (e.g. 5% for weighted-voting-rights names), combined with ``cap``
        by minimum.

    Returns
    -------
    numpy.ndarray or pandas.Series
        The weights, in the input order (a Series with the same index if a Series was given).

    Raises
    ------
    DataError
        NaN, zero or negative market caps or caps, or a length mismatch.
    InfeasibleError
        The caps sum to less than 100% (e.g. 30 names x 3% cap = 90%).

    Examples
    --------
    >>> import indexlab
    >>> indexlab.cap_weights([50.0, 30.0, 10.0, 10.0], cap=0.4).round(4).tolist()
    [0.4, 0.36, 0.12, 0.12]
    """
    return _call(_core.cap_weights, market_caps, cap, caps)


def capping_factors(market_caps: Any, cap: float = 0.08, caps: Any = None) -> Any:
    """Hang Seng-style capping factors in (0, 1], the largest equal to 1.

    ``CF_i`` is the capped weight over the uncapped weight, scaled so that uncapped names have 1.
    Multiplying free-float market caps by their factors and renormalising reproduces
    :func:`cap_weights`.

    Examples
    --------
    >>> import indexlab
    >>> indexlab.capping_factors([50.0, 30.0, 10.0, 10.0], cap=0.4).round(4).tolist()
    [0.6667, 1.0, 1.0, 1.0]
    """
    return _call(_core.capping_factors, market_caps, cap, caps)


def _call(fn: Any, market_caps: Any, cap: float, caps: Any) -> Any:
    labels = market_caps.index if isinstance(market_caps, pd.Series) else None
    m = _as_float_array(market_caps, "market_caps")
    per_name = None if caps is None else _as_float_array(caps, "caps")
    try:
        out = fn(m, _as_cap(cap), per_name)
    except DataError as err:
        raise _labelled(err, labels) from None
    if labels is not None:
        return pd.Series(out, index=labels, name="weight")
    return out
