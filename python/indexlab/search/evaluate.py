"""Run many candidate index designs through history and tabulate them.

:func:`evaluate` takes rule variants, fixed member lists and optimiser candidates, runs every
review point in time (the rules engine, the member list's weighting, or one batch of fast-path
solves per review for all optimiser candidates of a chunk), then backtests the chunk's
schedules in one sparse batch and reduces each candidate to one row. Chunks stream, so memory
stays bounded by ``chunk_size`` candidates (levels are kept only with ``keep_levels``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from indexlab import rules as rules_mod
from indexlab.backtest import (
    HKCosts,
    Schedule,
    _benchmark_series,
    _rebalance_days,
    backtest_batch,
    metrics,
    name_positions,
)
from indexlab.capping import cap_weights
from indexlab.data import Dataset
from indexlab.distributed import Executor, resolve
from indexlab.errors import DataError, InfeasibleError
from indexlab.market import LIQUIDITY_WINDOW, Market
from indexlab.optimise.risk import RiskModel
from indexlab.rules import IndexRules, build_index
from indexlab.rules.engine import PreparedData, _prepared
from indexlab.search.candidates import (
    WEIGHTINGS,
    MemberList,
    OptimisedCandidate,
    candidate_name,
    candidate_params,
)
from indexlab.search.optimised import optimised_schedules, realised_te
from indexlab.search.result import SearchResult

__all__ = ["LIQUIDITY_WINDOW", "evaluate", "review_risk_model"]

FloatArray = npt.NDArray[np.float64]
Progress = bool | None | Callable[[int, int | None], None]

#: Trading days in the trailing window of the liquidity measure (about 3 months).
#: Trading days per year: the risk model is annualised with it.
YEAR = 252
#: A name not traded for more than this many trading days at the cut-off is not "listed".
MAX_STALE_DAYS = 60

_RELATIVE = ("tracking_error", "information_ratio", "beta", "correlation")


def review_risk_model(
    dataset: Dataset, cutoff_idx: int, window: int = YEAR, n_factors: int = 10
) -> RiskModel:
    """The risk model an optimiser candidate uses at a review: point in time.

    :meth:`RiskModel.from_returns` on the ``window`` daily HKD total returns up to and including
    the cut-off day (none after it), annualised (x 252), ``n_factors`` statistical factors.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab.search import review_risk_model
    >>> ds = indexlab.datasets.synthetic(n_securities=40, years=2, seed=1)
    >>> review_risk_model(ds, 300, n_factors=3).loadings.shape
    (40, 3)
    """
    ret = Market.of(dataset).daily_returns()
    return _risk_model(ret, cutoff_idx, window, n_factors)


def _risk_model(ret: FloatArray, cut: int, window: int, n_factors: int) -> RiskModel:
    lo = max(cut - window, 0)
    r = ret[lo:cut] * np.sqrt(YEAR)
    if r.shape[0] < 2:
        raise DataError(
            f"the risk model needs at least 2 days of returns before the cut-off (day {cut})"
        )
    return RiskModel.from_returns(r, n_factors=min(n_factors, r.shape[1]))


# ------------------------------------------------------------------------------ context


@dataclass
class _Context:
    """Everything shared by all candidates, computed once per :func:`evaluate` call."""

    dataset: Dataset
    prep: PreparedData
    start: Any
    end: Any
    cut: npt.NDArray[np.int64]
    impl: npt.NDArray[np.int64]
    cut_dates: list[str]
    bench_w: FloatArray
    t0: int
    t1: int
    days: npt.NDArray[np.datetime64]
    index: pd.DatetimeIndex
    tr: FloatArray
    carried: FloatArray  # the same values: carried over suspensions by the market layer
    rates: FloatArray
    scores: FloatArray
    markets: npt.NDArray[np.str_]
    listed: npt.NDArray[np.bool_]
    ret: FloatArray
    bench_levels: FloatArray | None
    covered: int
    participation: float
    liquidity_days: float
    risk_window: int
    n_factors: int
    threads: int | None
    weighting: str
    id_pos: pd.Index
    carry_last_price: bool
    returns: str
    market: Market
    _risk: dict[int, RiskModel] = field(default_factory=dict)

    def connect_at(self, j: int) -> npt.NDArray[np.bool_]:
        """Connect eligibility known at review ``j``'s cut-off."""
        flags = self.prep.classified(self.cut)["connect_eligible"].to_numpy()
        return np.asarray(flags.reshape(len(self.cut), -1)[j], dtype=bool)

    def scores_on(self, day: int) -> FloatArray:
        """The AI scores known on window day ``day``: those of the last review cut-off before."""
        j = int(np.searchsorted(self.cut, self.t0 + day, side="right")) - 1
        return np.asarray(self.scores[max(j, 0)])

    def risk(self, j: int) -> RiskModel:
        if j not in self._risk:
            self._risk[j] = _risk_model(
                self.ret, int(self.cut[j]), self.risk_window, self.n_factors
            )
        return self._risk[j]

    def adv(self, day: int) -> FloatArray:
        """The market layer's liquidity measure at ``day`` (:meth:`Market.adv_hkd`)."""
        return self.market.adv_hkd(day)

    def review_label(self, j: int) -> str:
        impl = np.datetime_as_string(self.days[self.impl[j]])
        return f"review {j} (cut-off {self.cut_dates[j]}, implementation {impl})"


def _context(
    dataset: Dataset,
    parent: IndexRules,
    start: Any,
    end: Any,
    costs: HKCosts,
    benchmark: str | None,
    **opts: Any,
) -> _Context:
    prep = _prepared(dataset)
    try:
        hist = build_index(prep, parent, start, end)
    except InfeasibleError as err:
        raise InfeasibleError(
            f"the parent index {parent.name!r} (benchmark weights): {err}"
        ) from None
    n_days = len(dataset.dates)
    last_day = n_days - 1
    if dataset.universe_complete_until is not None:
        # Past the complete-universe date most names have no data: stop there rather than
        # carry their last prices.
        last_day = min(last_day, dataset.date_index(dataset.universe_complete_until))
    cal = hist.calendar[hist.calendar["impl_idx"] <= last_day - 1].reset_index(drop=True)
    if cal.empty:
        raise DataError(
            f"no review of the parent {parent.name!r} is implemented inside the data "
            f"(start {start}, end {end})"
        )
    cut = cal["cutoff_idx"].to_numpy(dtype=np.int64)
    impl = cal["impl_idx"].to_numpy(dtype=np.int64)
    ids = pd.Index(dataset.ids)
    bench_w = np.zeros((len(cal), len(ids)))
    rev = hist.reviews[hist.reviews["event"] == "review"]
    for j, cutoff in enumerate(cal["cutoff"]):
        rows = rev[rev["review_date"] == cutoff]
        bench_w[j, ids.get_indexer(rows["id"])] = rows["weight"].to_numpy()
    days = dataset.dates
    t0, t1 = int(impl[0]), last_day
    market = Market.of(dataset)
    tr_full = market.level_input(opts["returns"], opts["carry_last_price"])
    tr = np.ascontiguousarray(tr_full[t0 : t1 + 1])
    carried = tr
    last = prep.last_trade(cut)
    cut_day = days[cut].astype(np.int64)
    listed = (
        (prep.first_idx[None, :] <= cut[:, None])
        & (prep.listing_day[None, :] <= cut_day[:, None])
        & (prep.delisting_idx[None, :] > impl[:, None])
        & (last >= 0)
        & (cut[:, None] - last <= MAX_STALE_DAYS)
        & ~prep.no_data(cut)
        & np.isfinite(prep.ff_mcap[impl])
        & (prep.ff_mcap[impl] > 0)
    )
    bench_levels, covered = None, t1 - t0 + 1
    if benchmark is not None:
        if not isinstance(benchmark, str):
            raise DataError(
                "benchmark must be a dataset benchmark name or None, got "
                f"{type(benchmark).__name__}"
            )
        bench_levels, covered = _benchmark_series(dataset, benchmark, t0, t1)
    window = days[t0 : t1 + 1]
    return _Context(
        dataset=dataset,
        prep=prep,
        start=start,
        end=end,
        cut=cut,
        impl=impl,
        cut_dates=[str(pd.Timestamp(c).date()) for c in cal["cutoff"]],
        bench_w=bench_w,
        t0=t0,
        t1=t1,
        days=days,
        index=pd.DatetimeIndex(window.astype("datetime64[ns]"), name="date"),
        tr=tr,
        carried=carried,
        rates=costs.rates(dataset.securities),
        # Point in time: the AI scores known at each review's cut-off (R x N).
        scores=prep.classified(cut)["ai_score"].to_numpy(dtype=np.float64).reshape(len(cut), -1),
        markets=dataset.securities["market"].to_numpy(dtype=str),
        listed=listed,
        ret=market.daily_returns(),
        market=market,
        bench_levels=bench_levels,
        covered=covered,
        id_pos=ids,
        **opts,
    )


# ------------------------------------------------------------------------------ schedules


@dataclass
class _Sched:
    """One candidate's schedule in window days: rebalance days and sparse (R x N) weights."""

    reb: npt.NDArray[np.int64]
    weights: sp.csr_matrix


def _member_schedule(ctx: _Context, c: MemberList, name: str) -> _Sched:
    cols = ctx.id_pos.get_indexer(pd.Index(c.ids))
    if (cols < 0).any():
        bad = [i for i, p in zip(c.ids, cols, strict=True) if p < 0][:5]
        raise DataError(f"member list {name!r} holds ids not in the dataset: {bad}")
    weighting = c.weighting or ctx.weighting
    n = len(ctx.id_pos)
    rows = np.zeros((len(ctx.cut), n))
    for j in range(len(ctx.cut)):
        held = cols[ctx.listed[j, cols]]
        if held.size == 0:
            raise InfeasibleError(f"at {ctx.review_label(j)}: none of the members is listed")
        if weighting == "equal":
            rows[j, held] = 1.0 / held.size
            continue
        base = ctx.prep.ff_mcap[ctx.impl[j], held]
        if weighting == "ai_tilted":
            base = base * np.maximum(ctx.scores[j, held], 0.01)
        if held.size * c.cap < 1.0 - 1e-12:
            raise InfeasibleError(
                f"at {ctx.review_label(j)}: weight cap: {held.size} members listed x "
                f"{c.cap:.2%} cap = {held.size * c.cap:.2%} < 100%"
            )
        rows[j, held] = cap_weights(base, cap=c.cap)
    return _Sched(ctx.impl - ctx.t0, sp.csr_matrix(rows))


def _rules_schedule(ctx: _Context, c: IndexRules, name: str) -> _Sched:
    hist = build_index(ctx.prep, c, ctx.start, ctx.end)
    dates, _, w = hist.weights_matrix()
    reb, rows = _rebalance_days(name, dates, ctx.days, ctx.t0, ctx.t1)
    return _Sched(reb, sp.csr_matrix(w[rows]))


# ------------------------------------------------------------------------------ reduction


def _exposure(ctx: _Context, reb: npt.NDArray[np.int64], w: sp.csr_matrix, k: int) -> FloatArray:
    """Mean daily ``sum_i w_i(t) ai_score_i`` with weights drifting between rebalances (the
    definition of :func:`indexlab.backtest`), for ``k`` candidates stacked as ``(k * R, N)``."""
    r = len(reb)
    t = ctx.carried.shape[0]
    total = np.zeros(k)
    for j, r0 in enumerate(reb):
        wj = w[np.arange(k) * r + j]
        scores = ctx.scores_on(int(r0))
        total += wj @ scores
        # Days r0+1 .. end drift; the next rebalance day itself counts its new target.
        end = reb[j + 1] - 1 if j + 1 < r else t - 1
        if end <= r0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.nan_to_num(ctx.carried[r0 + 1 : end + 1] / ctx.carried[r0]).T
        num = wj @ (g * scores[:, None])
        den = wj @ g
        total += (num / den).sum(axis=1)
    return total / t


def _capacity(ctx: _Context, reb: npt.NDArray[np.int64], w: sp.csr_matrix) -> FloatArray:
    """Per stacked row: the AUM (HKD) at which the least liquid holding needs ``liquidity_days``
    days at ``participation`` of its ADV; the one measure of :mod:`indexlab.analytics.liquidity`
    (a series that stops is left out after its last observation, not counted as zero)."""
    from indexlab.analytics.liquidity import holdings_capacity

    return holdings_capacity(ctx.dataset, reb + ctx.t0, w, ctx.participation, ctx.liquidity_days)


def _reduce(
    ctx: _Context, names: list[str], scheds: list[_Sched], keep_levels: bool
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Backtest schedules sharing rebalance days together, then one row per candidate."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(scheds):
        groups.setdefault(tuple(int(x) for x in s.reb), []).append(i)
    frames, level_cols = [], {}
    for key, members in groups.items():
        reb = np.asarray(key, dtype=np.int64)
        r = len(reb)
        w = sp.vstack([scheds[i].weights for i in members], format="csr")
        if not ctx.carry_last_price:
            labels_k = [names[i] for i in members]
            ctx.market.check_held_rows(labels_k, w, reb + ctx.t0, ctx.t1)
        try:
            out = backtest_batch(ctx.tr, reb, w, cost_rate=ctx.rates, threads=ctx.threads)
        except DataError as err:
            labels_k = [names[i] for i in members]
            msg = name_positions(str(err), ctx.id_pos, ctx.index.date, labels_k, reb)
            raise DataError(msg) from None
        labels = [names[i] for i in members]
        stats = metrics(out.levels, turnover=out.turnover, dates=ctx.index)
        if ctx.bench_levels is not None and ctx.covered >= 2:
            rel = metrics(out.levels[:, : ctx.covered], benchmark=ctx.bench_levels[: ctx.covered])
            for col in _RELATIVE:
                stats[col] = rel[col].to_numpy()
        stats.index = pd.Index(labels)
        stats["ai_exposure"] = _exposure(ctx, reb, w, len(members))
        cap_rows = _capacity(ctx, reb, w)
        stats["liquidity_capacity"] = cap_rows.reshape(len(members), r).min(axis=1)
        last = w[np.arange(len(members)) * r + r - 1]
        ids = np.asarray(ctx.id_pos)
        mem, nmem = [], []
        for k in range(len(members)):
            row = last[k]
            order = np.argsort(-row.data, kind="stable")
            mem.append(",".join(ids[row.indices[order]]))
            nmem.append(row.nnz)
        stats["members"] = mem
        stats["n_members"] = nmem
        frames.append(stats)
        if keep_levels:
            for k, label in enumerate(labels):
                level_cols[label] = out.levels[k]
    table = pd.concat(frames) if frames else pd.DataFrame()
    levels = pd.DataFrame(level_cols, index=ctx.index) if keep_levels else None
    return table, levels


# ------------------------------------------------------------------------------ progress


class _Bar:
    """A plain progress bar on stderr (or a user callback ``f(done, total)``)."""

    def __init__(self, progress: Progress, total: int | None) -> None:
        self.callback = progress if callable(progress) else None
        on = sys.stderr.isatty() if progress is None else bool(progress)
        self.on = on and self.callback is None
        self.total = total
        self.start = time.perf_counter()

    def update(self, done: int) -> None:
        if self.callback is not None:
            self.callback(done, self.total)
        if not self.on:
            return
        el = time.perf_counter() - self.start
        if self.total:
            frac = done / self.total
            bar = "#" * int(30 * frac)
            msg = f"\rsearch [{bar:<30}] {done}/{self.total} candidates, {el:.1f} s"
        else:
            msg = f"\rsearch: {done} candidates, {el:.1f} s"
        sys.stderr.write(msg)
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ------------------------------------------------------------------------------ entry point


_COLUMNS = [
    "kind",
    "status",
    "cap",
    "n",
    "weighting",
    "te_weight",
    "n_members",
    "members",
    "ai_exposure",
    "te_budget",
    "ex_ante_te",
    "realised_te",
    "tracking_error",
    "information_ratio",
    "total_return",
    "annual_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "beta",
    "correlation",
    "average_turnover",
    "liquidity_capacity",
    "drawdown_peak",
    "drawdown_trough",
    "params",
]


def _normalise(c: Any) -> Any:
    if isinstance(c, (IndexRules, MemberList, OptimisedCandidate)):
        return c
    if isinstance(c, (list, tuple)) and c and all(isinstance(x, str) for x in c):
        return MemberList(tuple(c))
    raise DataError(
        f"a candidate is a {type(c).__name__}: expected IndexRules, MemberList, "
        "OptimisedCandidate or a list of ids"
    )


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def evaluate(
    dataset: Dataset,
    candidates: Iterable[Any],
    start: Any = None,
    end: Any = None,
    weighting: str = "ff_mcap",
    costs: HKCosts | None = None,
    benchmark: str | None = "HSTECH",
    parent: IndexRules = rules_mod.HSTECH,
    chunk_size: int = 1000,
    progress: Progress = None,
    threads: int | None = None,
    keep_levels: bool = False,
    keep_weights: bool = False,
    participation: float = 0.2,
    liquidity_days: float = 1.0,
    risk_window: int = YEAR,
    n_factors: int = 10,
    executor: Executor | None = None,
    carry_last_price: bool = False,
    returns: str | None = None,
) -> SearchResult:
    """Run every candidate through history, point in time, and tabulate the results.

    Reviews follow ``parent``'s calendar (``start``/``end`` bound the review cut-offs, as in
    :func:`indexlab.build_index`); weights are set at each implementation-day close and the
    backtest runs from the first implementation day to the end of the data, in HKD, net of
    ``costs``. Every candidate shares that window.

    * Rule variant (:class:`~indexlab.IndexRules`): :func:`indexlab.build_index`, then its
      ``weights_matrix()`` (reviews, fast entries and delistings).
    * :class:`MemberList` (or a plain list of ids): at each review, the members listed (traded
      by the cut-off within the last 60 trading days, not delisted by the implementation day)
      weighted by ``weighting`` (``"ff_mcap"`` capped, ``"ai_tilted"`` capped, ``"equal"``) on the
      implementation-day free-float market caps.
    * :class:`OptimisedCandidate`: at each review, ``max ai_score @ w - te_weight TE^2`` with
      ``bench`` = the parent index's weights at that review, the risk model of
      :func:`review_risk_model` (returns up to the cut-off) and ``mask`` = members listed
      (after the candidate's ``min_adv_hkd`` and ``connect_only`` screens); with ``te_budget``
      also ``TE <= te_budget``, solved exactly by the fast path's budget search (an impossible
      budget: status ``infeasible at <review>: smallest feasible TE budget x%``). All
      optimiser candidates of a chunk are solved in one fast-path batch per review (with a
      turnover penalty, one Clarabel batch per review; see :mod:`indexlab.search.optimised`).
      Column ``ex_ante_te``: the mean over reviews of the ex-ante TE of the solved weights,
      next to ``te_budget`` and ``realised_te``, the ex-post TE of the candidate's daily
      returns against its optimisation benchmark backtested the same way (the parent index's
      review weights, or the candidate's ``parent_weights``); ``tracking_error`` is against
      ``benchmark``.

    Liquidity capacity (column ``liquidity_capacity``, HKD): the largest AUM at which every
    holding of every rebalance can be traded in ``liquidity_days`` days at ``participation`` of
    its median daily turnover value over the 63 trading days up to the rebalance day (from the
    name's first trade on; days without a close up to its last observation count as zero,
    days after it (a coverage gap) and days with a close but no turnover value are left out; a
    name with no value at all is left out; :func:`indexlab.analytics.holdings_capacity`):
    ``min over rebalances j and names i of participation x liquidity_days x ADV_ij / w_ij``.

    Parameters
    ----------
    dataset
        The market.
    candidates
        An iterable (may be a lazy generator) of candidates; it is consumed ``chunk_size`` at
        a time, and each chunk is reduced to table rows before the next is read.
    costs, benchmark, parent
        Cost model (default :class:`~indexlab.HKCosts`), benchmark name in ``dataset.benchmarks``
        (or ``None``), and the parent rule set whose calendar and weights the member-list and
        optimiser candidates use.
    progress
        ``None``: a progress bar on stderr when it is a terminal; ``True``/``False`` force it;
        a callable ``f(done, total)`` is called after each chunk instead.
    threads
        Worker threads for the solver and the backtest; results do not depend on it.
    keep_levels, keep_weights
        Keep the daily levels (``result.levels``) and the schedules (``result.weights``).
    returns
        ``"total_return"`` or ``"price"``; by default ``"price"`` against a dataset benchmark
        (the HSI and HSTECH levels are price indices: like with like), else total return.
    carry_last_price
        Hold names past their last observation at their last price instead of raising
        :class:`~indexlab.DataError` (a coverage gap priced flat; see ``docs/conventions.md``).
        The window ends at the dataset's complete-universe date when it has one.
    executor
        Where the chunks run: ``None`` (in this process, one after the other) or an
        :mod:`indexlab.distributed` executor, e.g. ``DaskExecutor(client)``, which ships the
        shared context (dataset included) to every worker once and each chunk as one task,
        ``executor.parallelism`` chunks at a time. The table is the same, row for row.

    Returns
    -------
    SearchResult
        Ctrl-C stops after the chunk in progress is dropped and returns the finished chunks
        with ``interrupted=True``.

    Raises
    ------
    InfeasibleError
        When no candidate is feasible; the message names the constraint and the review for
        the first few. Infeasible candidates among feasible ones get a ``status`` saying why.

    Examples
    --------
    >>> import indexlab
    >>> from indexlab import rules, search
    >>> ds = indexlab.datasets.synthetic(n_securities=150, years=3, seed=2)
    >>> res = search.evaluate(ds, rules.grid(rules.HSTECH, n=[20, 25]), benchmark="HSTECH")
    >>> list(res.table.index)
    ['HSTECH[n=20,cap=0.08]', 'HSTECH[n=25,cap=0.08]']
    """
    if not isinstance(dataset, Dataset):
        raise DataError(f"evaluate needs an indexlab.Dataset, got {type(dataset).__name__}")
    if weighting not in WEIGHTINGS:
        raise DataError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise DataError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    for label, value in (("participation", participation), ("liquidity_days", liquidity_days)):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not np.isfinite(value) or value <= 0:
            raise DataError(f"{label} must be a finite number > 0, got {value!r}")
    if returns not in (None, "price", "total_return"):
        raise DataError(f"returns must be 'price' or 'total_return', got {returns!r}")
    if end is not None:
        dataset.warn_past_end(end, "evaluate end")
    ctx = _context(
        dataset,
        parent,
        start,
        end,
        HKCosts() if costs is None else costs,
        benchmark,
        participation=participation,
        liquidity_days=liquidity_days,
        risk_window=risk_window,
        n_factors=n_factors,
        threads=threads,
        weighting=weighting,
        carry_last_price=carry_last_price,
        returns=("price" if isinstance(benchmark, str) else "total_return")
        if returns is None
        else returns,
    )
    total = len(candidates) if hasattr(candidates, "__len__") else None  # type: ignore[arg-type]
    bar = _Bar(progress, total)
    tables: list[pd.DataFrame] = []
    levels: list[pd.DataFrame] = []
    kept: dict[str, Any] = {}
    seen: set[str] = set()
    done = named = 0
    interrupted = risk_ready = False
    ex = resolve(executor)
    try:
        shared: Any = None
        chunks = _chunks(candidates, chunk_size)
        # Chunks are named here, in order (names are unique across chunks), then run as
        # independent tasks, ``parallelism`` at a time, and collected in order.
        while wave := list(islice(chunks, ex.parallelism)):
            jobs: list[_Job] = []
            for chunk in wave:
                cands, names = _name_chunk(chunk, named, seen)
                named += len(names)
                jobs.append(_Job(cands, names, keep_levels, keep_weights))
            if not risk_ready and any(
                isinstance(c, OptimisedCandidate) for job in jobs for c in job.cands
            ):
                # The review risk models come from BLAS/LAPACK, whose last bits depend on the
                # machine and its thread count: compute them here, once, and ship them, so
                # every worker solves with the very models of a local run.
                for j in range(len(ctx.cut)):
                    ctx.risk(j)
                shared, risk_ready = None, True
            if shared is None:  # once per search (again only after adding the risk models)
                shared = ex.share(ctx)
            for job, (table, lv, sched) in zip(
                jobs, ex.map(_chunk_task, jobs, shared), strict=True
            ):
                tables.append(table)
                if lv is not None:
                    levels.append(lv)
                if keep_weights:
                    kept.update(sched)
                done += len(job.names)
                bar.update(done)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    table = pd.concat(tables) if tables else pd.DataFrame(columns=_COLUMNS)
    table.index.name = "candidate"
    if not interrupted and len(table) and not (table["status"] == "ok").any():
        first = [f"{k}: {v}" for k, v in table["status"].head(3).items()]
        raise InfeasibleError("no candidate is feasible; " + "; ".join(first))
    lv_all = pd.concat(levels, axis=1) if keep_levels and levels else None
    if keep_levels and lv_all is None:
        lv_all = pd.DataFrame(index=ctx.index)
    return SearchResult(table=table, levels=lv_all, weights=kept, interrupted=interrupted)


@dataclass
class _Job:
    """One chunk's task: its candidates and their (already unique) names."""

    cands: list[Any]
    names: list[str]
    keep_levels: bool
    keep_weights: bool


def _name_chunk(chunk: list[Any], offset: int, seen: set[str]) -> tuple[list[Any], list[str]]:
    """Normalise a chunk and name its candidates (a repeated name gets ``#position``)."""
    cands = [_normalise(c) for c in chunk]
    names = []
    for i, c in enumerate(cands):
        name = candidate_name(c, offset + i)
        if name in seen:
            name = f"{name}#{offset + i}"
        seen.add(name)
        names.append(name)
    return cands, names


def _chunk_task(
    job: _Job, ctx: _Context
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Schedule]]:
    """The task an executor runs (in process or on a worker holding the shared context)."""
    return _run_chunk(ctx, job.cands, job.names, job.keep_levels, job.keep_weights)


def _run_chunk(
    ctx: _Context,
    cands: list[Any],
    names: list[str],
    keep_levels: bool,
    keep_weights: bool,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Schedule]]:
    status = ["ok"] * len(cands)
    scheds: list[_Sched | None] = [None] * len(cands)
    opt = [i for i, c in enumerate(cands) if isinstance(c, OptimisedCandidate)]
    for i, c in enumerate(cands):
        if i in opt:
            continue
        try:
            if isinstance(c, IndexRules):
                scheds[i] = _rules_schedule(ctx, c, names[i])
            else:
                scheds[i] = _member_schedule(ctx, c, names[i])
        except InfeasibleError as err:
            status[i] = f"infeasible {err}" if str(err).startswith("at ") else f"infeasible: {err}"
    ex_ante = np.full(len(cands), np.nan)
    realised = np.full(len(cands), np.nan)
    bench: dict[int, sp.csr_matrix] = {}
    if opt:
        run = optimised_schedules(ctx, [cands[i] for i in opt], [names[i] for i in opt])
        reb = ctx.impl - ctx.t0
        for i, w, bw, msg in zip(opt, run.weights, run.bench, run.status, strict=True):
            scheds[i], status[i] = (None if w is None else _Sched(reb, w)), msg
            if bw is not None:
                bench[i] = bw
        ex_ante[opt] = run.ex_ante
    ok = [i for i in range(len(cands)) if scheds[i] is not None]
    stats, levels = _reduce(
        ctx, [names[i] for i in ok], [s for s in scheds if s is not None], keep_levels
    )
    params = pd.DataFrame([candidate_params(c) for c in cands], index=pd.Index(names))
    params["status"] = status
    if bench:
        # After _reduce, which names a held name past its last price first.
        held = list(bench)
        realised[held] = realised_te(
            ctx,
            ctx.impl - ctx.t0,
            [scheds[i].weights for i in held],  # type: ignore[union-attr]
            [bench[i] for i in held],
        )
    params["ex_ante_te"] = ex_ante
    params["realised_te"] = realised
    table = params.join(stats, how="left")
    table = table.reindex(
        columns=[c for c in _COLUMNS if c in table.columns]
        + [c for c in table.columns if c not in _COLUMNS]
    )
    kept = {}
    for i in ok if keep_weights else []:
        s = scheds[i]
        assert s is not None
        dates = ctx.days[ctx.t0 + s.reb]
        kept[names[i]] = Schedule(dates, np.asarray(ctx.id_pos), s.weights.toarray())
    return table, levels, kept
