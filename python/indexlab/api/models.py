"""Versioned request and response models of the service API (pydantic v2).

Every request carries ``api_version: "1"`` and a ``kind`` that picks its model. Requests are
strict: unknown fields are errors (a typo must not silently fall back to a default).

Size limits
-----------
Module-level constants, read at validation time (a service may lower or raise them before it
starts serving; tests monkeypatch them):

* :data:`MAX_SECURITIES` (2,000): securities in an inline dataset or a synthetic one, names
  in an optimiser universe.
* :data:`MAX_DATES` (6,000, about 24 years of trading days): distinct panel dates of an inline
  dataset, ``years * 252`` of a synthetic one, rebalance dates of a weights schedule.
* :data:`MAX_PANEL_ROWS` (2,000,000): rows of an inline panel.
* :data:`MAX_SCHEDULES` (32): schedules in one backtest request.
* :data:`MAX_CANDIDATES` (5,000): candidates in one search request.
* :data:`MAX_REQUEST_BYTES` (64 MiB): the JSON text of one request.
* :data:`MAX_DEADLINE_SECONDS` (3,600): the largest ``deadline_seconds``.
* :data:`MAX_NESTING` (64): the deepest nesting of objects and arrays in a request.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "API_VERSION",
    "MAX_CANDIDATES",
    "MAX_DATES",
    "MAX_DEADLINE_SECONDS",
    "MAX_NESTING",
    "MAX_PANEL_ROWS",
    "MAX_REQUEST_BYTES",
    "MAX_SCHEDULES",
    "MAX_SECURITIES",
    "BacktestRequest",
    "BacktestResponse",
    "BuildRequest",
    "BuildResponse",
    "Costs",
    "Diagnostics",
    "ErrorResponse",
    "HkTechData",
    "InlineData",
    "MemberCandidates",
    "OptimiseRequest",
    "OptimiseResponse",
    "OptimiserCandidates",
    "RulesGridCandidates",
    "RulesSchedule",
    "SearchRequest",
    "SearchResponse",
    "SyntheticData",
    "WeightsSchedule",
]

API_VERSION = "1"

MAX_SECURITIES = 2_000
MAX_DATES = 6_000
MAX_PANEL_ROWS = 2_000_000
MAX_SCHEDULES = 32
MAX_CANDIDATES = 5_000
MAX_REQUEST_BYTES = 64 * 1024 * 1024
MAX_DEADLINE_SECONDS = 3_600.0
MAX_NESTING = 64

PresetName = Literal["HSI", "HSTECH", "HSTECH_2026", "AI_CHAIN", "AI_CHAIN_AH"]
BenchmarkName = Literal["HSI", "HSTECH"]


def _limit(name: str) -> int | float:
    # Looked up at call time so that a service (or a test) can change the module constants.
    value: int | float = globals()[name]
    return value


def _too_many(what: str, found: int, limit_name: str) -> None:
    limit = _limit(limit_name)
    if found > limit:
        raise ValueError(
            f"{what}: at most {limit:g} allowed (indexlab.api.models.{limit_name}), found {found}"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------ datasets


class HkTechData(_Strict):
    """The bundled real-price Hong Kong tech sample (``indexlab.datasets.hk_tech()``)."""

    name: Literal["hk_tech"]


class SyntheticData(_Strict):
    """A seeded synthetic market (``indexlab.datasets.synthetic(n_securities, years, seed)``)."""

    name: Literal["synthetic"]
    n_securities: int = Field(300, ge=10)
    years: float = Field(5.0, gt=0)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _size(self) -> SyntheticData:
        _too_many("n_securities", self.n_securities, "MAX_SECURITIES")
        _too_many("years * 252 trading days", int(self.years * 252), "MAX_DATES")
        return self


class InlineData(_Strict):
    """Data sent with the request, validated by ``indexlab.Dataset.from_frames``.

    ``securities``: one object per security (``id``, ``name``, ``market``, ``currency``,
    ``listing_date``, ``delisting_date``, ``industry``, ``listing_type``, ``wvr``,
    ``connect_eligible``, ``ai_layer``, ``ai_score``). ``panel``: long rows (``date``, ``id``,
    ``close``, ``total_return``, ``shares_outstanding``, ``free_float_factor``,
    ``turnover_value``, ``turnover_shares``), sorted by date. ``fx``: rows (``date``,
    ``currency``, ``to_hkd``); ``benchmarks``: rows (``date``, ``index``, ``level``).
    """

    name: Literal["inline"]
    securities: list[dict[str, Any]] = Field(min_length=1)
    panel: list[dict[str, Any]] = Field(min_length=1)
    fx: list[dict[str, Any]] | None = None
    benchmarks: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _size(self) -> InlineData:
        _too_many("securities", len(self.securities), "MAX_SECURITIES")
        _too_many("panel rows", len(self.panel), "MAX_PANEL_ROWS")
        dates = {row.get("date") for row in self.panel}
        _too_many("distinct panel dates", len(dates), "MAX_DATES")
        return self


DatasetRef = Annotated[
    HkTechData | SyntheticData | InlineData,
    Field(discriminator="name", description="A named dataset or inline data."),
]

RulesSpec = Annotated[
    PresetName | dict[str, Any],
    Field(description="A preset name or an IndexRules dict (IndexRules.to_dict())."),
]


# ------------------------------------------------------------------------------ requests


class _Request(_Strict):
    api_version: Literal["1"] = Field(description="The API version this request is written for.")
    deadline_seconds: float | None = Field(
        None,
        gt=0,
        description=(
            "Stop and return a 'timeout' error after this many seconds (checked between stages, "
            "schedules and batch chunks)."
        ),
    )
    request_id: str | None = Field(None, max_length=200, description="Echoed in the response.")

    @field_validator("deadline_seconds")
    @classmethod
    def _deadline(cls, v: float | None) -> float | None:
        if v is not None and v > _limit("MAX_DEADLINE_SECONDS"):
            raise ValueError(f"at most {_limit('MAX_DEADLINE_SECONDS'):g} seconds allowed")
        return v


class BuildRequest(_Request):
    """Run a rule set over a dataset: constituents and weights at every review."""

    kind: Literal["build"]
    dataset: DatasetRef
    rules: RulesSpec
    overrides: dict[str, Any] | None = Field(
        None, description="Changes for IndexRules.replace, e.g. {'cap': 0.1, 'n': 20}."
    )
    start: dt.date | None = None
    end: dt.date | None = None


class RulesSchedule(_Strict):
    """A schedule built from rules (then backtested)."""

    rules: RulesSpec
    overrides: dict[str, Any] | None = None
    start: dt.date | None = None
    end: dt.date | None = None


class WeightsSchedule(_Strict):
    """Explicit target weights: ``weights[j][i]`` on ``ids[i]`` set at the close of ``dates[j]``."""

    dates: list[dt.date] = Field(min_length=1)
    ids: list[str] = Field(min_length=1)
    weights: list[list[float]]

    @model_validator(mode="after")
    def _shape(self) -> WeightsSchedule:
        _too_many("rebalance dates", len(self.dates), "MAX_DATES")
        _too_many("ids", len(self.ids), "MAX_SECURITIES")
        if len(self.weights) != len(self.dates):
            raise ValueError(
                f"weights: expected one row per date ({len(self.dates)}), found {len(self.weights)}"
            )
        for j, row in enumerate(self.weights):
            if len(row) != len(self.ids):
                raise ValueError(
                    f"weights[{j}]: expected one value per id ({len(self.ids)}), found {len(row)}"
                )
        return self


def _schedule_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "weights" if "weights" in value else "rules"
    return "weights" if isinstance(value, WeightsSchedule) else "rules"


ScheduleSpec = Annotated[
    Annotated[RulesSchedule, Tag("rules")] | Annotated[WeightsSchedule, Tag("weights")],
    Discriminator(_schedule_tag),
]


class Costs(_Strict):
    """``indexlab.HKCosts`` fields (rates per side, fractions of traded value)."""

    commission: float = Field(0.0, ge=0)
    hk_stamp_duty: float = Field(0.001, ge=0)
    hk_trading_fee: float = Field(0.0000565, ge=0)
    hk_sfc_levy: float = Field(0.000027, ge=0)
    hk_afrc_levy: float = Field(0.0000015, ge=0)
    a_stamp_duty_sell: float = Field(0.0005, ge=0)
    a_handling_fee: float = Field(0.0000341, ge=0)


class BacktestRequest(_Request):
    """Backtest named schedules net of costs, against a benchmark."""

    kind: Literal["backtest"]
    dataset: DatasetRef
    schedules: dict[str, ScheduleSpec] = Field(min_length=1)
    costs: Costs = Field(default_factory=lambda: Costs.model_validate({}))
    benchmark: BenchmarkName | None = "HSTECH"
    start: dt.date | None = None
    end: dt.date | None = None
    include_weights: bool = Field(False, description="Add the long target-weights table.")

    @field_validator("schedules")
    @classmethod
    def _count(cls, v: dict[str, Any]) -> dict[str, Any]:
        _too_many("schedules", len(v), "MAX_SCHEDULES")
        if "benchmark" in v:
            raise ValueError("'benchmark' is reserved for the benchmark column; rename it")
        return v


class OptimiseRequest(_Request):
    """Solve a named optimiser model once: ``ai_chain`` (``indexlab.optimise.ai_chain_model``).

    The universe is ``universe`` (ids) or, when omitted, every name with a free-float market
    cap and a total-return value on ``date`` (default: the last date). The risk model is
    ``RiskModel.from_returns`` over the ``lookback_days`` daily returns up to ``date``. The
    parent (tracking) weights default to free-float market-cap weights at ``date``; ``scores``
    to the securities' ``ai_score``; the membership ``mask`` to 1 for every name. ``mask``,
    ``scores`` and ``bench`` override them per id (``mask`` as a list: those ids 1, the others 0).
    """

    kind: Literal["optimise"]
    dataset: DatasetRef
    model: Literal["ai_chain"] = "ai_chain"
    date: dt.date | None = None
    universe: list[str] | None = Field(None, min_length=1)
    cap: float = Field(0.08, gt=0, le=1)
    te_weight: float = Field(10.0, ge=0)
    lookback_days: int = Field(252, ge=20)
    n_factors: int = Field(5, ge=1, le=50)
    mask: list[str] | dict[str, float] | None = None
    scores: dict[str, float] | None = None
    bench: dict[str, float] | None = None

    @field_validator("universe")
    @classmethod
    def _universe(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            _too_many("universe", len(v), "MAX_SECURITIES")
            if len(set(v)) != len(v):
                raise ValueError("universe: ids must be unique")
        return v


class RulesGridCandidates(_Strict):
    """Rule-set variants: every combination of ``axes`` values applied to ``rules``
    (``indexlab.rules.grid``)."""

    type: Literal["rules_grid"]
    rules: RulesSpec
    overrides: dict[str, Any] | None = None
    axes: dict[str, list[Any]] = Field(min_length=1)


class MemberCandidates(_Strict):
    """Explicit member lists (each a set of ids, weighted by the search engine's rules)."""

    type: Literal["members"]
    members: list[list[str]] = Field(min_length=1)
    cap: float = Field(0.08, gt=0, le=1)


class OptimiserCandidates(_Strict):
    """Optimiser candidates: one ``ai_chain`` solve per member list (its mask) at each review
    (``indexlab.search.OptimisedCandidate``).

    ``te_budget``: annualised ex-ante tracking-error budget against the parent's weights at
    each review (``null``: none); ``min_adv_hkd``: hold only names whose trailing median daily
    turnover value (HKD, 63 days to the cut-off) is at least this; ``connect_only``: hold only
    Stock Connect eligible names; ``markets``: hold only names of these markets (``"A"``: SH
    and SZ); ``aum_hkd`` and ``participation``: each weight at most ``participation x ADV /
    aum_hkd``; ``turnover_weight``: penalty per unit of L1 turnover against the previous
    review's weights; ``parent_weights``: the TE benchmark as weights by id (each review keeps
    the names listed, rescaled to 1) instead of the parent index's review weights. The table
    reports ``ex_ante_te`` and ``realised_te`` (ex post, against that benchmark).
    """

    type: Literal["optimiser"]
    model: Literal["ai_chain"] = "ai_chain"
    members: list[list[str]] = Field(min_length=1)
    cap: float = Field(0.08, gt=0, le=1)
    te_weight: float = Field(10.0, ge=0)
    te_budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    min_adv_hkd: float | None = Field(None, ge=0, allow_inf_nan=False)
    connect_only: bool = False
    markets: list[Literal["HK", "SH", "SZ", "A"]] | None = Field(None, min_length=1)
    aum_hkd: float | None = Field(None, gt=0, allow_inf_nan=False)
    participation: float = Field(0.2, gt=0, allow_inf_nan=False)
    turnover_weight: float = Field(0.0, ge=0, allow_inf_nan=False)
    parent_weights: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = Field(
        None, min_length=1
    )

    @field_validator("parent_weights")
    @classmethod
    def _parent_weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            _too_many("parent_weights", len(v), "MAX_SECURITIES")
            if not any(x > 0 for x in v.values()):
                raise ValueError("parent_weights: expected at least one positive weight")
        return v


CandidatesSpec = Annotated[
    RulesGridCandidates | MemberCandidates | OptimiserCandidates, Field(discriminator="type")
]


class SearchRequest(_Request):
    """Evaluate many candidates (``indexlab.search.evaluate``): backtest metrics per candidate."""

    kind: Literal["search"]
    dataset: DatasetRef
    candidates: CandidatesSpec
    costs: Costs = Field(default_factory=lambda: Costs.model_validate({}))
    benchmark: BenchmarkName | None = "HSTECH"
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _count(self) -> SearchRequest:
        c = self.candidates
        if isinstance(c, RulesGridCandidates):
            n = 1
            for values in c.axes.values():
                n *= len(values)
        else:
            n = len(c.members)
        _too_many("candidates", n, "MAX_CANDIDATES")
        return self


REQUEST_MODELS: dict[str, type[_Request]] = {
    "build": BuildRequest,
    "backtest": BacktestRequest,
    "optimise": OptimiseRequest,
    "search": SearchRequest,
}


# ------------------------------------------------------------------------------ responses


class Diagnostics(_Strict):
    warnings: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class _Response(_Strict):
    api_version: Literal["1"] = "1"
    indexlab_version: str
    request_id: str | None = None
    diagnostics: Diagnostics = Field(default_factory=Diagnostics)
    timings: dict[str, float] = Field(
        default_factory=dict, description="Seconds per stage, plus 'total'."
    )


class ReviewRow(_Strict):
    review_date: dt.date
    effective_date: dt.date
    event: str
    id: str
    weight: float
    capping_factor: float | None
    rank: int | None
    reason: str


class ChangeRow(_Strict):
    effective_date: dt.date
    review_date: dt.date
    event: str
    id: str
    change: Literal["add", "delete"]


class BuildResult(_Strict):
    rules: dict[str, Any] = Field(description="The rules that ran (IndexRules.to_dict()).")
    reviews: list[ReviewRow]
    changes: list[ChangeRow]
    latest: dict[str, float] = Field(description="Weights of the last effective set, by id.")
    latest_effective_date: dt.date | None


class BuildResponse(_Response):
    kind: Literal["build"] = "build"
    result: BuildResult


class Series(_Strict):
    dates: list[dt.date]
    values: dict[str, list[float | None]]


class WeightRow(_Strict):
    schedule: str
    date: dt.date
    id: str
    weight: float


class BacktestResult(_Strict):
    levels: Series = Field(description="HKD levels (base 1000) per schedule, plus 'benchmark'.")
    metrics: dict[str, dict[str, float | str | None]] = Field(
        description="schedule -> metric -> value (numbers; ISO dates for start/end)"
    )
    turnover: dict[str, Series] = Field(description="schedule -> traded fraction per rebalance")
    weights: list[WeightRow] | None = None


class BacktestResponse(_Response):
    kind: Literal["backtest"] = "backtest"
    result: BacktestResult


class OptimiseResult(_Strict):
    model: str
    date: dt.date
    status: str
    objective: float | None
    weights: dict[str, float | None] = Field(description="Weight per universe name.")
    ai_exposure: float | None
    tracking_error: float | None = Field(description="Annualised (252 days), vs bench.")
    solve_path: Literal["fast", "conic"]


class OptimiseResponse(_Response):
    kind: Literal["optimise"] = "optimise"
    result: OptimiseResult


class SearchResponse(_Response):
    kind: Literal["search"] = "search"
    result: dict[str, Any]


class ErrorBody(_Strict):
    code: Literal[
        "invalid_request",
        "data_error",
        "infeasible",
        "solver_error",
        "timeout",
        "cancelled",
        "internal",
    ]
    message: str
    where: Any = Field(None, description="A field path (list) or the stage that failed.")


class ErrorResponse(_Strict):
    api_version: Literal["1"] = "1"
    indexlab_version: str
    kind: str | None = None
    request_id: str | None = None
    error: ErrorBody
    timings: dict[str, float] = Field(default_factory=dict)


RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "build": BuildResponse,
    "backtest": BacktestResponse,
    "optimise": OptimiseResponse,
    "search": SearchResponse,
}
