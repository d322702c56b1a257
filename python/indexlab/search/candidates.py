"""Candidate kinds for :func:`indexlab.search.evaluate`, and generators of many of them.

Three kinds of candidate run through history:

* an :class:`~indexlab.rules.IndexRules` rule variant (e.g. from :func:`indexlab.rules.grid`):
  the rules engine runs every review;
* a :class:`MemberList`: a fixed list of ids; at each review the members still listed are
  weighted by ``weighting`` (point in time);
* an :class:`OptimisedCandidate`: at each review the AI-chain model is solved (fast path) over
  the members still listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from indexlab.errors import DataError
from indexlab.rules import IndexRules

__all__ = [
    "WEIGHTINGS",
    "MemberList",
    "OptimisedCandidate",
    "candidate_name",
    "candidate_params",
    "random_subsets",
]

#: Weightings a :class:`MemberList` accepts.
WEIGHTINGS = ("ff_mcap", "equal", "ai_tilted")


@dataclass(frozen=True)
class MemberList:
    """A fixed member list, re-weighted at each review over the members still listed.

    ``weighting`` (``None``: the ``weighting`` given to :func:`~indexlab.search.evaluate`):
    ``"ff_mcap"`` (free-float market cap in HKD at the implementation-day close,
    capped at ``cap``), ``"ai_tilted"`` (the same times ``ai_score``, capped) or ``"equal"``.

    Examples
    --------
    >>> from indexlab.search import MemberList
    >>> MemberList(["0700.HK", "9988.HK"], name="two", weighting="equal").weighting
    'equal'
    """

    ids: tuple[str, ...]
    name: str | None = None
    weighting: str | None = None
    cap: float = 0.08

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
        if not self.ids:
            raise DataError(f"member list {self.name!r}: expected at least one id, found none")
        if self.weighting is not None and self.weighting not in WEIGHTINGS:
            raise DataError(
                f"member list {self.name!r}: weighting must be one of {WEIGHTINGS}, "
                f"got {self.weighting!r}"
            )
        if not 0.0 < self.cap <= 1.0:
            raise DataError(f"member list {self.name!r}: cap must be in (0, 1], got {self.cap}")


@dataclass(frozen=True)
class OptimisedCandidate:
    """At each review, the AI-chain model solved point in time over a membership.

    ``maximise ai_score @ w - te_weight * TE^2(w, parent) - turnover_weight * |w - prev|_1``
    over ``sum w = 1``, ``0 <= w <= cap * mask``, ``w * aum_hkd <= participation * ADV`` (with
    ``aum_hkd``) and, with ``te_budget``, ``TE(w, parent) <= te_budget``, where the mask is
    ``members`` (ids) or ``mask`` (a 0/1 vector over the dataset's ids) intersected with the
    names listed at the review and the ``markets``, Connect and ADV screens. ``members=None``
    and ``mask=None`` mean every listed name of ``markets`` (default ``("HK",)``); ``top_k``
    then keeps the ``top_k`` largest by ``ai_score`` x free-float market cap at the cut-off (a
    rank seed). TE is annualised (risk model from 252 trailing daily returns x 252;
    :func:`indexlab.search.review_risk_model`).

    Attributes
    ----------
    te_budget : float or None
        Ex-ante tracking-error budget (annualised, e.g. ``0.08``) against the parent's weights
        at each review, solved exactly (the fast path's budget search of
        :func:`indexlab.optimise.compile`). A review where no weights meet it makes the
        candidate infeasible; its status gives the smallest feasible budget.
    min_adv_hkd : float or None
        Liquidity screen: only names whose median daily turnover value (HKD, 63 trading days
        up to the review's cut-off) is at least this are held.
    connect_only : bool
        Only names marked ``connect_eligible`` in the dataset (as known at the cut-off) are
        held.
    markets : tuple of str or None
        Market filter: only names listed on these markets are held (``"HK"``, ``"SH"``,
        ``"SZ"``; ``"A"`` means both A-share markets). ``None``: no filter, except that without
        ``members`` and ``mask`` the universe is the HK market.
    aum_hkd, participation : float or None, float
        Liquidity participation cap: with ``aum_hkd`` (the fund size, HKD), each weight is at
        most ``participation x ADV / aum_hkd`` (ADV as for ``min_adv_hkd``; a name without one
        is not held). A review where the caps cannot add up to 100% makes the candidate
        infeasible.
    turnover_weight : float
        Penalty per unit of L1 turnover ``sum |w - prev|`` against the weights the candidate
        set at the previous review (none at the first review), in the units of ``ai_score``.
        Reviews are then solved in order, on the generic (Clarabel) path.
    parent_weights : mapping or pandas.Series of id to weight, or None
        The benchmark of the TE terms, instead of the parent index's weights at each review:
        a published or user-supplied weight vector by id, restricted at each review to the
        names listed then and rescaled to sum to 1.

    Examples
    --------
    >>> from indexlab.search import OptimisedCandidate
    >>> OptimisedCandidate(top_k=30, name="seed", te_budget=0.08).te_budget
    0.08
    >>> OptimisedCandidate(markets=("A",), aum_hkd=5e9, turnover_weight=0.01).markets
    ('SH', 'SZ')
    """

    members: tuple[str, ...] | None = None
    mask: Any = field(default=None, compare=False)
    te_weight: float = 50.0
    cap: float = 0.08
    name: str | None = None
    top_k: int | None = None
    markets: tuple[str, ...] | None = None
    te_budget: float | None = None
    min_adv_hkd: float | None = None
    connect_only: bool = False
    aum_hkd: float | None = None
    participation: float = 0.2
    turnover_weight: float = 0.0
    parent_weights: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.members is not None and self.mask is not None:
            raise DataError(f"candidate {self.name!r}: give members or mask, not both")
        if self.members is not None:
            object.__setattr__(self, "members", tuple(str(i) for i in self.members))
        if self.mask is not None:
            object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))
        if self.te_weight < 0:
            raise DataError(f"candidate {self.name!r}: te_weight must be >= 0")
        if not 0.0 < self.cap <= 1.0:
            raise DataError(f"candidate {self.name!r}: cap must be in (0, 1], got {self.cap}")
        if self.top_k is not None and self.top_k < 1:
            raise DataError(f"candidate {self.name!r}: top_k must be >= 1")
        object.__setattr__(self, "markets", _markets(self.markets, self.name))
        for label in ("te_budget", "min_adv_hkd", "aum_hkd", "participation", "turnover_weight"):
            value = getattr(self, label)
            if value is None:
                continue
            number = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
                value, bool
            )
            if not number or not np.isfinite(value) or value < 0:
                raise DataError(
                    f"candidate {self.name!r}: {label} must be a finite number >= 0"
                    + (" or None" if label in ("te_budget", "min_adv_hkd", "aum_hkd") else "")
                    + f", got {value!r}"
                )
            object.__setattr__(self, label, float(value))
        for label in ("aum_hkd", "participation"):
            if getattr(self, label) == 0.0:
                raise DataError(f"candidate {self.name!r}: {label} must be > 0, got 0")
        if not isinstance(self.connect_only, (bool, np.bool_)):
            raise DataError(
                f"candidate {self.name!r}: connect_only must be True or False, "
                f"got {self.connect_only!r}"
            )
        object.__setattr__(self, "connect_only", bool(self.connect_only))
        if self.parent_weights is not None:
            object.__setattr__(
                self, "parent_weights", _weight_series(self.parent_weights, self.name)
            )


#: Market codes of the securities master, and the aliases a market filter accepts.
MARKETS = ("HK", "SH", "SZ")
_MARKET_ALIASES = {"A": ("SH", "SZ")}


def _markets(markets: Any, name: str | None) -> tuple[str, ...] | None:
    if markets is None:
        return None
    if isinstance(markets, str) or not all(isinstance(m, str) for m in markets):
        raise DataError(
            f"candidate {name!r}: markets must be a sequence of market codes such as "
            f"('HK',) or ('A',), got {markets!r}"
        )
    out: list[str] = []
    for m in markets:
        for code in _MARKET_ALIASES.get(m, (m,)):
            if code not in MARKETS:
                raise DataError(
                    f"candidate {name!r}: unknown market {m!r}; expected one of "
                    f"{MARKETS + tuple(_MARKET_ALIASES)}"
                )
            if code not in out:
                out.append(code)
    if not out:
        raise DataError(f"candidate {name!r}: markets is empty (use None for no filter)")
    return tuple(out)


def _weight_series(weights: Any, name: str | None) -> pd.Series:
    """A parent weight vector by id, checked: unique ids, finite weights >= 0, some > 0."""
    try:
        s = pd.Series(weights, dtype=object) if not isinstance(weights, pd.Series) else weights
        s = pd.Series([float(v) for v in s.to_numpy()], index=pd.Index([str(i) for i in s.index]))
    except (TypeError, ValueError) as err:
        raise DataError(
            f"candidate {name!r}: parent_weights must map ids to numbers, found {err}"
        ) from None
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()][:5].tolist()
        raise DataError(f"candidate {name!r}: parent_weights repeats ids {dup}")
    bad = ~np.isfinite(s.to_numpy()) | (s.to_numpy() < 0)
    if bad.any():
        raise DataError(
            f"candidate {name!r}: parent_weights must be finite and >= 0, found "
            f"{s[bad].iloc[0]} for {s.index[bad][0]!r}"
        )
    if not (s.to_numpy() > 0).any():
        raise DataError(f"candidate {name!r}: parent_weights has no positive weight")
    return s


def candidate_params(c: Any) -> dict[str, Any]:
    """The parameter columns of a candidate's row (kind, cap, n, weighting, te_weight,
    te_budget)."""
    if isinstance(c, IndexRules):
        return {
            "kind": "rules",
            "cap": c.weighting.cap,
            "n": c.selection.target,
            "weighting": c.weighting.scheme,
            "te_weight": np.nan,
            "te_budget": np.nan,
            "params": c.to_json(),
        }
    if isinstance(c, MemberList):
        return {
            "kind": "members",
            "cap": c.cap if c.weighting != "equal" else np.nan,
            "n": len(c.ids),
            "weighting": c.weighting,
            "te_weight": np.nan,
            "te_budget": np.nan,
            "params": json.dumps({"ids": list(c.ids), "weighting": c.weighting, "cap": c.cap}),
        }
    if isinstance(c, OptimisedCandidate):
        if c.members is not None:
            n = len(c.members)
        elif c.mask is not None:
            n = int(np.count_nonzero(c.mask))
        else:
            n = c.top_k if c.top_k is not None else -1
        spec: dict[str, Any] = {"te_weight": c.te_weight, "cap": c.cap, "top_k": c.top_k}
        spec["members"] = list(c.members) if c.members is not None else None
        spec["mask"] = np.flatnonzero(c.mask).tolist() if c.mask is not None else None
        spec.update(
            markets=None if c.markets is None else list(c.markets),
            te_budget=c.te_budget,
            min_adv_hkd=c.min_adv_hkd,
            connect_only=c.connect_only,
            aum_hkd=c.aum_hkd,
            participation=c.participation,
            turnover_weight=c.turnover_weight,
        )
        if c.parent_weights is not None:
            spec["parent_weights"] = {str(k): float(v) for k, v in c.parent_weights.items()}
        return {
            "kind": "optimised",
            "cap": c.cap,
            "n": n,
            "weighting": "optimised",
            "te_weight": c.te_weight,
            "te_budget": np.nan if c.te_budget is None else c.te_budget,
            "params": json.dumps(spec),
        }
    raise DataError(
        f"a candidate is a {type(c).__name__}: expected IndexRules, MemberList or "
        "OptimisedCandidate"
    )


def candidate_name(c: Any, position: int) -> str:
    """The candidate's name, or a descriptive default (rule variants: ``NAME[n=..,cap=..]``)."""
    if isinstance(c, IndexRules):
        return f"{c.name}[n={c.selection.target},cap={c.weighting.cap:g}]"
    name = getattr(c, "name", None)
    if name:
        return str(name)
    kind = "members" if isinstance(c, MemberList) else "optimised"
    return f"{kind}_{position}"


def random_subsets(
    pool: Sequence[str],
    k: int,
    count: int,
    seed: int = 0,
    te_weight: float = 50.0,
    cap: float = 0.08,
    prefix: str = "random",
) -> Iterator[OptimisedCandidate]:
    """``count`` optimiser candidates over random ``k``-subsets of ``pool`` (lazy, seeded).

    Examples
    --------
    >>> from indexlab.search import random_subsets
    >>> [len(c.members) for c in random_subsets([str(i) for i in range(10)], 3, 2)]
    [3, 3]
    """
    ids = np.asarray([str(p) for p in pool])
    if not 1 <= k <= len(ids):
        raise DataError(f"random_subsets: k must be in [1, {len(ids)}] (pool size), got {k}")
    rng = np.random.default_rng(seed)
    for j in range(count):
        pick = np.sort(rng.choice(len(ids), size=k, replace=False))
        yield OptimisedCandidate(
            members=tuple(ids[pick]), te_weight=te_weight, cap=cap, name=f"{prefix}_{j}"
        )
