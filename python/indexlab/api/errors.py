"""Error codes of the service API and the cooperative deadline.

Every failure leaves :func:`indexlab.api.handle` as ``{"error": {"code", "message", "where"}}``
with one of the stable codes in :data:`ERROR_CODES`; nothing escapes as a traceback.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = [
    "ERROR_CODES",
    "ApiError",
    "CancelToken",
    "DeadlineExceeded",
]

#: The stable error codes, in the order a client usually handles them.
ERROR_CODES = (
    "invalid_request",  # malformed JSON, a field that fails validation, a size limit
    "data_error",  # indexlab.errors.DataError: the data or parameters do not make sense together
    "infeasible",  # indexlab.errors.InfeasibleError: constraints that cannot all hold
    "solver_error",  # indexlab.errors.SolverError, or an optimiser status other than optimal
    "timeout",  # deadline_seconds passed before the work finished
    "cancelled",  # stopped before it finished (CancelToken.cancel, Ctrl-C): no partial result
    "internal",  # anything else: a bug; logged with its traceback, reported generically
)


class ApiError(Exception):
    """An error with a stable ``code``; ``where`` is a field path (list) or a stage name."""

    def __init__(self, code: str, message: str, where: Any = None) -> None:
        if code not in ERROR_CODES:  # pragma: no cover - programming error
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where

    def document(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "where": self.where}


class DeadlineExceeded(ApiError):
    """Raised at a checkpoint once the request's deadline has passed (code ``timeout``) or it
    was cancelled before its deadline (``cancelled=True``: code ``cancelled``)."""

    def __init__(self, stage: str, seconds: float | None, cancelled: bool = False) -> None:
        if cancelled:
            super().__init__(
                "cancelled", f"the request was cancelled before it finished (at {stage})", stage
            )
            return
        limit = "" if seconds is None else f" of {seconds:g} s"
        super().__init__(
            "timeout", f"the request ran past its deadline{limit} (stopped at {stage})", stage
        )


class CancelToken:
    """A deadline plus a cancel flag, checked by the handlers between units of work.

    The handlers call :meth:`check` between stages, between schedules and between chunks of a
    batch; a Rust batch call that has started runs to completion (it holds no Python state and
    is kept short by chunking), then the next :meth:`check` stops the work.

    Examples
    --------
    >>> t = CancelToken(None)
    >>> t.check("anywhere")  # no deadline: never raises
    >>> t.cancel()
    >>> t.cancelled
    True
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds
        self._flag = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next checkpoint."""
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set() or (self._end is not None and time.monotonic() >= self._end)

    def remaining(self) -> float | None:
        """Seconds left (``None``: no deadline), never negative."""
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def check(self, stage: str) -> None:
        """Raise :class:`DeadlineExceeded` when the deadline passed or :meth:`cancel` was called."""
        if self._end is not None and time.monotonic() >= self._end:
            raise DeadlineExceeded(stage, self.seconds)
        if self._flag.is_set():
            raise DeadlineExceeded(stage, self.seconds, cancelled=True)
