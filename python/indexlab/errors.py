"""The exception hierarchy. The Rust core maps its one error enum onto these classes.

``DataError`` and ``InfeasibleError`` are also ``ValueError`` so that code which already catches
``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DataWarning",
    "IndexlabError",
    "InfeasibleError",
    "SolverError",
]


class IndexlabError(Exception):
    """Base class of every error indexlab raises on purpose."""


class DataError(IndexlabError, ValueError):
    """Bad input: a missing column, NaN, a negative cap, duplicate ids, misaligned dates.

    The message names the column, security, date or position and the values involved.
    """


class InfeasibleError(IndexlabError, ValueError):
    """Constraints that cannot all hold, e.g. ``30 names x 3% cap = 90% < 100%``."""


class SolverError(IndexlabError, RuntimeError):
    """A numerical solver failed on an instance it should have solved."""


class DataWarning(UserWarning):
    """The request reaches past what the data cover (a date after the last observation, a
    review after the date through which the universe is complete); the result says how far."""
