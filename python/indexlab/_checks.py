"""Argument checks shared by the public entry points (one definition of "a number")."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from indexlab.errors import DataError

FloatArray = npt.NDArray[np.float64]


def numeric_array(values: Any, name: str, allow_bool: bool = False) -> FloatArray:
    """``values`` as float64, refusing text, complex and object values (and booleans unless
    ``allow_bool``) instead of letting numpy turn ``"0.5"`` or ``True`` into a number."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from None
    kinds = "biuf" if allow_bool else "iuf"
    if arr.dtype.kind not in kinds:
        raise DataError(f"{name} must be numeric (integers or floats), got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)
