"""A seeded synthetic Hong Kong + mainland (Stock Connect) equity market.

:func:`synthetic_arrays` returns plain arrays (a :class:`SyntheticMarket`); :func:`synthetic`
wraps them in an :class:`indexlab.data.Dataset`. The same seed gives identical output: every
draw comes from one ``np.random.default_rng(seed)``, in a fixed order.

Modelling choices (simple on purpose; each one exists to exercise a rule or a screen):

* **Calendar**: ``round(252 * years)`` business days (Mon-Fri) from ``start``; no holidays.
* **Securities**: ``1 - a_share_fraction`` of names list in HK (``0700.HK``-style codes, HKD),
  the rest in Shanghai (``600000.SH`` / ``688xxx.SH``) or Shenzhen (``000001.SZ`` /
  ``300xxx.SZ``), in CNY. Industries follow a rough HK mix; ``ai_layer`` is drawn given the
  industry (mostly Information Technology, Telecommunications, Consumer Discretionary) and
  ``ai_score`` from a layer-specific Beta law (compute and model high, application low, none
  near 0). WVR and secondary listings are HK-only and commoner among tech names.
* **Returns** (daily log returns): a stochastic-volatility market factor (HK and A-share factors,
  correlation 0.55), 12 industry factors, one common "AI beta" factor with loading
  ``layer_loading * (0.5 + ai_score)`` (compute 1.2 > model 1.0 > infrastructure 0.9 > cloud 0.8
  > application 0.5 > none 0), one factor per AI layer, and Student-t(4) idiosyncratic noise
  (smaller for large caps). Annual volatilities land at about 25-60%. The drift is set so the
  expected total return is about 7% a year, give or take 3%.
* **Dividends**: about 75% of non-AI and 40% of AI names pay a yield of 0.5-4.5% (AI payers
  0.2-1.5%) on one or two ex-dates a year. On an ex-date ``close`` drops by the dividend and
  ``total_return`` does not. ``total_return`` equals ``close`` on the first listed day.
* **Market caps**: log10(HK$ cap) ~ N(10.0, 0.65), clipped to HK$1bn..HK$1tn, plus a handful of
  mega-caps (HK$0.5tn..HK$4tn). These are caps at the start (or at listing); prices then move.
  Prices are lognormal around HK$/CN¥15. A-share caps are converted with the CNY->HKD rate, an
  Ornstein-Uhlenbeck walk in logs around 1.09 (stationary s.d. 0.5%, so about 1.08-1.10).
* **Share counts and free float**: about 15% of names have one or two step changes in shares
  (buybacks -0.5..-5%, placements +2..+15%); about 10% have a free-float step change. Free-float
  factors sit on 5% bands in [0.05, 1]; WVR names have lower free float.
* **Turnover**: daily value = free-float cap x monthly velocity / 21 x lognormal noise x a
  busy-day factor that rises with |return|. Monthly velocity is lognormal around 4.5% (HK) or 8%
  (A-shares). About 6% of names, drawn from the smaller caps, trade around 0.04% a month, below
  the commonly quoted 0.1% velocity test. ``turnover_shares = turnover_value / close``.
* **Corporate events**: about 8% of names list after the start date. A few of these are very
  large HK tech IPOs sized at 1.2-2.5x the 5th-largest cap that day, so they rank in the top 5
  on day 1 (this exercises "fast entry"). About 3% of names delist (NaN afterwards,
  ``delisting_date`` = last day with data). About 2% have suspensions of 5-60 days: ``close``,
  ``total_return`` and turnover are NaN; shares and free float stay defined.
* **Benchmarks** (synthetic, ``HSI`` and ``HSTECH``): gross total-return indices (so they compare
  with backtest levels) starting at 1000. ``HSI`` holds the 50 largest HK names by full market
  cap; ``HSTECH`` holds the 30 largest HK names that are Information Technology or have an AI
  layer. Weights are free-float cap, uncapped, and are set on the first day and on the first
  trading day of each calendar quarter. Between reviews weights drift; a suspended or delisted
  member is held at its last value.

Examples
--------
>>> from indexlab.datasets.synthetic import synthetic_arrays
>>> m = synthetic_arrays(n_securities=50, years=1.0, seed=7)
>>> m.fields["close"].shape == (len(m.dates), len(m.securities))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from indexlab.data import AI_LAYERS, INDUSTRIES
from indexlab.errors import DataError

if TYPE_CHECKING:
    from indexlab.data import Dataset

__all__ = ["SyntheticMarket", "synthetic", "synthetic_arrays"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_DAYS = 252
_SQRT_DAYS = float(np.sqrt(_DAYS))
_CHUNK = 256  # names per block: bounds temporaries to a few (T, 256) arrays

_INDUSTRY_P = np.array([0.04, 0.07, 0.12, 0.15, 0.07, 0.09, 0.03, 0.04, 0.10, 0.12, 0.12, 0.05])
_IT = INDUSTRIES.index("Information Technology")
_CD = INDUSTRIES.index("Consumer Discretionary")

_NONE = AI_LAYERS.index("none")
# P(ai_layer | industry), columns in AI_LAYERS order; industries not listed are all "none".
_LAYER_GIVEN_INDUSTRY: dict[str, tuple[float, ...]] = {
    "Information Technology": (0.18, 0.22, 0.12, 0.08, 0.15, 0.25),
    "Telecommunications": (0.0, 0.20, 0.25, 0.0, 0.10, 0.45),
    "Consumer Discretionary": (0.0, 0.0, 0.0, 0.03, 0.18, 0.79),
    "Industrials": (0.02, 0.10, 0.0, 0.0, 0.0, 0.88),
    "Financials": (0.0, 0.0, 0.0, 0.0, 0.05, 0.95),
    "Healthcare": (0.0, 0.0, 0.0, 0.02, 0.05, 0.93),
    "Utilities": (0.0, 0.05, 0.0, 0.0, 0.0, 0.95),
}
_SCORE_BETA = np.array([(9, 2), (6, 3), (5, 4), (8, 2), (2, 5), (1, 30)], dtype=np.float64)
_AI_LOADING = np.array([1.2, 0.9, 0.8, 1.0, 0.5, 0.0])

# Annual factor volatilities.
_VOL_HK, _VOL_A, _RHO_HK_A = 0.18, 0.22, 0.55
_VOL_INDUSTRY, _VOL_AI, _VOL_LAYER = 0.12, 0.22, 0.10
_T_DOF_IDIO, _T_DOF_FACTOR = 4.0, 5.0

_HK_BENCH = (("HSI", 50, False), ("HSTECH", 30, True))  # (name, members, tech universe only)


@dataclass(frozen=True)
class SyntheticMarket:
    """Arrays of a synthetic market, aligned on ``(dates, securities.id)``.

    Attributes
    ----------
    securities : pandas.DataFrame
        One row per security (``id``, ``name``, ``market``, ``currency``, ``listing_date``,
        ``delisting_date``, ``industry``, ``listing_type``, ``wvr``, ``connect_eligible``,
        ``hk_company``, ``ai_layer``, ``ai_score``, ``ai_rationale``, ``data_end``).
    dates : numpy.ndarray
        ``datetime64[D]`` business days, strictly increasing, length ``T``.
    fields : dict of str to numpy.ndarray
        ``(T, N)`` float64 panels: ``close``, ``total_return``, ``shares_outstanding``,
        ``free_float_factor``, ``turnover_value``, ``turnover_shares``; NaN when not listed
        (and, for prices and turnover, when suspended).
    fx : pandas.DataFrame
        ``date``, ``currency`` (``CNY``), ``to_hkd``.
    benchmarks : pandas.DataFrame
        ``date``, ``index`` (``HSI``, ``HSTECH``), ``level``.

    Examples
    --------
    >>> m = synthetic_arrays(n_securities=20, years=0.5, seed=1)
    >>> sorted(m.fields) == sorted(
    ...     ["close", "total_return", "shares_outstanding", "free_float_factor",
    ...      "turnover_value", "turnover_shares"])
    True
    """

    securities: pd.DataFrame
    dates: npt.NDArray[np.datetime64]
    fields: dict[str, FloatArray] = field(repr=False)
    fx: pd.DataFrame = field(repr=False)
    benchmarks: pd.DataFrame = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"SyntheticMarket({len(self.securities)} securities x {len(self.dates)} days, "
            f"{self.dates[0]}..{self.dates[-1]})"
        )


# ------------------------------------------------------------------------------- public API


def synthetic_arrays(
    n_securities: int = 300,
    years: float = 5.0,
    seed: int = 0,
    start: str = "2016-01-04",
    a_share_fraction: float = 0.2,
) -> SyntheticMarket:
    """Generate a seeded synthetic HK + A-share market as plain arrays.

    Parameters
    ----------
    n_securities : int, default 300
        Number of securities ``N`` (at least 10).
    years : float, default 5.0
        Length of the panel in years of 252 business days (``> 0``).
    seed : int, default 0
        Seed of the one ``numpy.random.Generator`` used; equal seeds give equal output.
    start : str, default "2016-01-04"
        First date (rolled forward to a business day).
    a_share_fraction : float, default 0.2
        Share of names listed in Shanghai/Shenzhen (in ``[0, 1]``).

    Returns
    -------
    SyntheticMarket
        Securities master, dates, ``(T, N)`` panels, FX and benchmark levels.

    Raises
    ------
    indexlab.errors.DataError
        (a ``ValueError``) on an invalid argument.

    Examples
    --------
    >>> m = synthetic_arrays(n_securities=30, years=1.0, seed=3)
    >>> len(m.securities), m.fields["close"].shape[1]
    (30, 30)
    >>> bool((m.fields["close"][~np.isnan(m.fields["close"])] > 0).all())
    True
    """
    n, n_days, d0 = _validate(n_securities, years, seed, start, a_share_fraction)
    rng = np.random.default_rng(seed)
    dates = np.busday_offset(d0, np.arange(n_days), roll="forward")
    sec = _draw_securities(rng, n, n_days, a_share_fraction)
    fx_rate = _fx_path(rng, n_days)
    fields = _simulate_panel(rng, sec, n_days, fx_rate)
    _size_big_ipos(rng, sec, fields, fx_rate)
    securities = _securities_frame(sec, dates, d0)
    fx = pd.DataFrame(
        {"date": dates.astype("datetime64[ns]"), "currency": "CNY", "to_hkd": fx_rate}
    )
    benchmarks = _benchmarks(sec, dates, fields)
    return SyntheticMarket(securities, dates, fields, fx, benchmarks)


def synthetic(n_securities: int = 300, years: float = 5.0, seed: int = 0, **kwargs: Any) -> Dataset:
    """Generate a synthetic market as a validated :class:`indexlab.data.Dataset`.

    Parameters
    ----------
    n_securities, years, seed
        As in :func:`synthetic_arrays`.
    **kwargs
        ``start`` and ``a_share_fraction``, passed on to :func:`synthetic_arrays`.

    Returns
    -------
    indexlab.data.Dataset

    Examples
    --------
    >>> ds = synthetic(n_securities=20, years=1.0, seed=1)
    >>> ds.field("close").shape == (len(ds.dates), 20)
    True
    """
    from indexlab.data import Dataset

    m = synthetic_arrays(n_securities, years, seed, **kwargs)
    return Dataset.from_arrays(m.securities, m.dates, m.fields, fx=m.fx, benchmarks=m.benchmarks)


# ------------------------------------------------------------------------------- validation


def _validate(
    n_securities: int, years: float, seed: int, start: str, a_share_fraction: float
) -> tuple[int, int, np.datetime64]:
    if isinstance(n_securities, bool) or not isinstance(n_securities, int | np.integer):
        raise DataError(f"n_securities must be an integer >= 10, got {n_securities!r}")
    if n_securities < 10:
        raise DataError(f"n_securities must be >= 10, got {n_securities}")
    if not isinstance(years, int | float | np.integer | np.floating) or not years > 0:
        raise DataError(f"years must be a number > 0, got {years!r}")
    if not np.isfinite(years):
        raise DataError(f"years must be finite, got {years!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 <= a_share_fraction <= 1.0:
        raise DataError(f"a_share_fraction must be in [0, 1], got {a_share_fraction!r}")
    try:
        day = np.datetime64(pd.Timestamp(start).date(), "D")
    except (ValueError, TypeError) as exc:
        raise DataError(f"start must be a date such as '2016-01-04', got {start!r}") from exc
    d0 = np.busday_offset(day, 0, roll="forward")
    return int(n_securities), max(1, round(_DAYS * float(years))), d0


# ------------------------------------------------------------------------------- securities


@dataclass
class _Sec:
    """Per-security draws, all length N (internal, mutable while generating)."""

    market: npt.NDArray[np.str_]
    codes: list[str]
    industry: IntArray
    layer: IntArray
    score: FloatArray
    wvr: npt.NDArray[np.bool_]
    secondary: npt.NDArray[np.bool_]
    hk_company: npt.NDArray[np.bool_]
    cap0: FloatArray  # HKD full market cap at the anchor day
    price0: FloatArray  # local-currency price at the anchor day
    ff0: FloatArray
    anchor: IntArray  # first day with data (0 for names listed before the start)
    last: IntArray  # last day with data
    back_days: IntArray  # business days listed before the start (0 for IPOs)
    big_ipo: npt.NDArray[np.bool_]
    velocity: FloatArray  # monthly turnover / free-float cap
    suspensions: list[tuple[int, int, int]]  # (security, first day, last day)
    share_events: list[tuple[int, int, float]]  # (security, day, multiplier)
    ff_events: list[tuple[int, int, float]]  # (security, day, new factor)
    connect: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _codes(
    rng: np.random.Generator, k: int, pools: list[range], suffix: str, width: int
) -> list[str]:
    pool = np.concatenate([np.arange(r.start, r.stop) for r in pools])
    if k > len(pool):
        raise DataError(f"cannot draw {k} unique {suffix} codes (at most {len(pool)})")
    picked = np.sort(rng.choice(pool, size=k, replace=False))
    return [f"{c:0{width}d}.{suffix}" for c in picked]


def _band(x: FloatArray) -> FloatArray:
    """Free-float factors on 5% bands in [0.05, 1] (rounded up, as HSIL does)."""
    return np.clip(np.ceil(np.asarray(x) * 20.0 - 1e-9) / 20.0, 0.05, 1.0)


def _draw_securities(
    rng: np.random.Generator, n: int, n_days: int, a_share_fraction: float
) -> _Sec:
    n_a = round(n * a_share_fraction)
    n_sh = round(n_a * 0.55)
    n_hk, n_sz = n - n_a, n_a - n_sh
    market = np.array(["HK"] * n_hk + ["SH"] * n_sh + ["SZ"] * n_sz)
    hk_width = 4 if n_hk <= 9999 else 5
    codes = (
        _codes(rng, n_hk, [range(1, 10**hk_width)], "HK", hk_width)
        + _codes(rng, n_sh, [range(600000, 606000), range(688000, 689000)], "SH", 6)
        + _codes(rng, n_sz, [range(1, 4000), range(300001, 302000)], "SZ", 6)
    )
    is_hk = market == "HK"

    # Roles: mega-caps (listed before the start), IPOs (a few very large, HK-listed if any).
    n_mega = int(np.clip(round(n / 100), 3, 8))
    mega = np.zeros(n, dtype=bool)
    mega[rng.choice(n, size=n_mega, replace=False)] = True
    ipo_lo, ipo_hi = max(1, n_days // 20), n_days - max(1, n_days // 20)
    big = np.zeros(n, dtype=bool)
    ipo = np.zeros(n, dtype=bool)
    if ipo_hi > ipo_lo:
        n_ipo = max(2, round(0.08 * n))
        n_big = int(np.clip(round(n / 100), 1, 5))
        big_pool = np.flatnonzero(is_hk & ~mega)
        if len(big_pool) < n_big:
            big_pool = np.flatnonzero(~mega)
        big[rng.choice(big_pool, size=n_big, replace=False)] = True
        rest = np.flatnonzero(~mega & ~big)
        ipo[rng.choice(rest, size=min(len(rest), n_ipo - n_big), replace=False)] = True
        ipo |= big

    # Industry, AI layer and score; big IPOs are tech names with an AI line.
    industry = rng.choice(len(INDUSTRIES), size=n, p=_INDUSTRY_P)
    industry[big] = rng.choice([_IT, _CD], size=int(big.sum()))
    u = rng.random(n)
    layer = np.full(n, _NONE, dtype=np.int64)
    for name, probs in _LAYER_GIVEN_INDUSTRY.items():
        rows = industry == INDUSTRIES.index(name)
        layer[rows] = np.searchsorted(np.cumsum(probs), u[rows], side="right").clip(0, _NONE)
    layer[big] = rng.choice([0, 2, 3, 4], size=int(big.sum()))
    score = np.clip(rng.beta(_SCORE_BETA[layer, 0], _SCORE_BETA[layer, 1]), 0.0, 1.0)
    tech = (industry == _IT) | (industry == _CD) | (layer != _NONE)
    wvr = is_hk & (rng.random(n) < np.where(tech, 0.25, 0.02))
    secondary = is_hk & (rng.random(n) < np.where(tech, 0.12, 0.02))
    hk_share = np.where(np.isin(industry, [7, 9, 11]), 0.7, np.where(industry == 8, 0.4, 0.15))
    hk_company = is_hk & (rng.random(n) < hk_share)

    # Sizes at the anchor day (HKD), prices, free float.
    log_cap = np.clip(rng.normal(10.0, 0.65, size=n), 9.0, 12.0)
    log_cap[mega] = rng.uniform(11.7, 12.6, size=n_mega)
    cap0 = 10.0**log_cap
    price0 = np.exp(rng.normal(np.log(15.0), np.where(is_hk, 1.2, 0.8)))
    ff0 = _band(rng.uniform(0.2, 1.0, size=n) * np.where(wvr, 0.7, 1.0))

    # Listing history: IPO day inside the panel, or 20 days..20 years before the start.
    anchor = np.zeros(n, dtype=np.int64)
    back_days = rng.integers(20, 20 * _DAYS, size=n)
    if ipo.any():
        anchor[ipo] = rng.integers(ipo_lo, ipo_hi, size=int(ipo.sum()))
        back_days[ipo] = 0
    last = np.full(n, n_days - 1, dtype=np.int64)
    ordinary = np.flatnonzero(~mega & ~big)
    for i in rng.choice(ordinary, size=min(len(ordinary), max(1, round(0.03 * n))), replace=False):
        lo = anchor[i] + 60
        if lo < n_days - 1:
            last[i] = rng.integers(lo, n_days - 1)

    # Liquidity: lognormal velocity; ~6% illiquid names drawn from the smaller caps.
    velocity = np.exp(rng.normal(np.log(np.where(is_hk, 0.045, 0.08)), 0.6)).clip(max=0.6)
    small = np.flatnonzero((log_cap < np.quantile(log_cap, 0.4)) & ~mega & ~big)
    n_illiquid = min(len(small), max(3, round(0.06 * n)))
    illiquid = rng.choice(small, size=n_illiquid, replace=False)
    velocity[illiquid] = np.exp(rng.normal(np.log(0.0004), 0.3, size=n_illiquid))
    connect = np.where(is_hk, (cap0 >= 5e9) & (~secondary | (rng.random(n) < 0.5)), cap0 >= 8e9)

    # Suspensions, share-count and free-float step changes (loops over events, not days).
    suspensions: list[tuple[int, int, int]] = []
    for i in rng.choice(ordinary, size=min(len(ordinary), max(2, round(0.02 * n))), replace=False):
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(5, 61))
            lo, hi = anchor[i] + 1, last[i] - length
            if hi > lo:
                first = int(rng.integers(lo, hi))
                end = first + length - 1
                # Keep runs apart (a gap of at least one traded day) so each is 5..60 days.
                if all(end < a - 1 or first > b + 1 for j, a, b in suspensions if j == i):
                    suspensions.append((int(i), first, end))
    share_events: list[tuple[int, int, float]] = []
    for i in rng.choice(n, size=round(0.15 * n), replace=False):
        for _ in range(int(rng.integers(1, 3))):
            lo, hi = anchor[i] + 20, last[i]
            if hi > lo:
                buyback = rng.random() < 0.4
                mult = rng.uniform(0.95, 0.995) if buyback else rng.uniform(1.02, 1.15)
                share_events.append((int(i), int(rng.integers(lo, hi)), float(mult)))
    ff_events: list[tuple[int, int, float]] = []
    for i in rng.choice(n, size=round(0.10 * n), replace=False):
        lo, hi = anchor[i] + 20, last[i]
        if hi > lo:
            new = float(_band(ff0[i] + rng.uniform(-0.25, 0.25)))
            ff_events.append((int(i), int(rng.integers(lo, hi)), new))

    return _Sec(
        market=market,
        codes=codes,
        industry=industry,
        layer=layer,
        score=score,
        wvr=wvr,
        secondary=secondary,
        hk_company=hk_company,
        cap0=cap0,
        price0=price0,
        ff0=ff0,
        anchor=anchor,
        last=last,
        back_days=back_days,
        big_ipo=big,
        velocity=velocity,
        suspensions=suspensions,
        share_events=share_events,
        ff_events=ff_events,
        connect=connect,
    )


def _securities_frame(
    sec: _Sec, dates: npt.NDArray[np.datetime64], d0: np.datetime64
) -> pd.DataFrame:
    n = len(sec.codes)
    listing = np.where(
        sec.back_days > 0,
        np.busday_offset(d0, -sec.back_days, roll="forward"),
        dates[sec.anchor],
    ).astype("datetime64[D]")
    delisted = sec.last < len(dates) - 1
    delisting = np.where(delisted, dates[sec.last], np.datetime64("NaT"))
    suffix = np.where(sec.wvr & sec.secondary, "-SW", np.where(sec.wvr, "-W", ""))
    suffix = np.where(sec.secondary & ~sec.wvr, "-S", suffix)
    industry = np.array(INDUSTRIES)[sec.industry]
    names = [f"Synthetic {industry[i]} {sec.codes[i].split('.')[0]}{suffix[i]}" for i in range(n)]
    layer = np.array(AI_LAYERS)[sec.layer]
    return pd.DataFrame(
        {
            "id": sec.codes,
            "name": names,
            "market": sec.market,
            "currency": np.where(sec.market == "HK", "HKD", "CNY"),
            "listing_date": listing.astype("datetime64[ns]"),
            "delisting_date": delisting.astype("datetime64[ns]"),
            "industry": industry,
            "listing_type": np.where(sec.secondary, "secondary", "primary"),
            "wvr": sec.wvr,
            "connect_eligible": sec.connect,
            "hk_company": sec.hk_company,
            "ai_layer": layer,
            "ai_score": sec.score,
            # A synthetic market has no businesses to judge: IT, Consumer Discretionary and any
            # AI-chain name count as technology-theme names.
            "tech_theme": np.isin(industry, ["Information Technology", "Consumer Discretionary"])
            | (np.asarray(layer) != "none"),
            "ai_rationale": [f"synthetic: drawn for layer '{x}'" for x in layer],
            "data_end": dates[sec.last].astype("datetime64[ns]"),
        }
    )


# ---------------------------------------------------------------------------------- factors


def _ar1(rng: np.random.Generator, n_days: int, phi: float, sd: float) -> FloatArray:
    """Stationary AR(1) path with marginal s.d. ``sd`` (a scalar loop over days: cheap)."""
    shocks = rng.standard_normal(n_days) * sd * np.sqrt(1.0 - phi * phi)
    out = np.empty(n_days)
    x = rng.standard_normal() * sd
    for t in range(n_days):
        x = phi * x + shocks[t]
        out[t] = x
    return out


def _fx_path(rng: np.random.Generator, n_days: int) -> FloatArray:
    """CNY->HKD: slow mean-reverting walk in logs around 1.09 (half-life about a year)."""
    return 1.09 * np.exp(_ar1(rng, n_days, phi=0.997, sd=0.005))


def _unit_t(rng: np.random.Generator, dof: float, size: Any) -> FloatArray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(dof, size=size) / np.sqrt(dof / (dof - 2.0))


def _factors(
    rng: np.random.Generator, n_days: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Daily factor returns: markets (T, 2: HK, A), industries (T, 12), AI beta (T, 1) and
    AI layers (T, 6; the "none" column is zero)."""
    log_vol = _ar1(rng, n_days, phi=0.98, sd=0.35)
    mult = np.exp(log_vol - 0.35**2)[:, None]  # E[mult^2] = 1: stress raises every factor's vol
    eps = _unit_t(rng, _T_DOF_FACTOR, (n_days, 2))
    markets = np.column_stack(
        [
            _VOL_HK * eps[:, 0],
            _VOL_A * (_RHO_HK_A * eps[:, 0] + np.sqrt(1 - _RHO_HK_A**2) * eps[:, 1]),
        ]
    )
    industries = _VOL_INDUSTRY * _unit_t(rng, _T_DOF_FACTOR, (n_days, len(INDUSTRIES)))
    ai_beta = _VOL_AI * _unit_t(rng, _T_DOF_FACTOR, (n_days, 1))
    layers = np.zeros((n_days, len(AI_LAYERS)))
    layers[:, :_NONE] = _VOL_LAYER * _unit_t(rng, _T_DOF_FACTOR, (n_days, _NONE))
    scale = mult / _SQRT_DAYS
    return markets * scale, industries * scale, ai_beta * scale, layers * scale


# ------------------------------------------------------------------------------------ panel


def _simulate_panel(
    rng: np.random.Generator, sec: _Sec, n_days: int, fx_rate: FloatArray
) -> dict[str, FloatArray]:
    n = len(sec.codes)
    markets, industries, ai_beta, layers = _factors(rng, n_days)
    is_hk = sec.market == "HK"
    mkt_col = np.where(is_hk, 0, 1)
    beta = np.clip(rng.normal(1.0, 0.2, size=n), 0.4, 1.6)
    ind_load = np.clip(rng.normal(1.0, 0.2, size=n), 0.3, 1.7)
    ai_load = _AI_LOADING[sec.layer] * (0.5 + sec.score)
    layer_load = np.where(sec.layer == _NONE, 0.0, 1.0)  # used for the variance only
    idio = np.clip(
        np.exp(rng.normal(np.log(0.28), 0.25, size=n)) * (sec.cap0 / 1e10) ** -0.05, 0.12, 0.6
    )
    var = (
        (beta * np.where(is_hk, _VOL_HK, _VOL_A)) ** 2
        + (ind_load * _VOL_INDUSTRY) ** 2
        + (ai_load * _VOL_AI) ** 2
        + (layer_load * _VOL_LAYER) ** 2
        + idio**2
    )
    expected = rng.normal(0.07, 0.03, size=n)  # arithmetic total return per year
    mu = (expected - 0.5 * var) / _DAYS
    sd_day = np.sqrt(var) / _SQRT_DAYS

    # Dividends: yield y paid in k equal parts, ex-dates every 252/k days from a random phase.
    ai_name = sec.layer != _NONE
    pays = rng.random(n) < np.where(ai_name, 0.4, 0.75)
    yld = np.where(ai_name, rng.uniform(0.002, 0.015, size=n), rng.uniform(0.005, 0.045, size=n))
    yld = np.where(pays, yld, 0.0)
    per_year = rng.integers(1, 3, size=n)
    period = _DAYS // per_year
    phase = rng.integers(0, period)
    log_keep = np.log1p(-yld / per_year)

    fx_local = np.where(is_hk, 1.0, fx_rate[sec.anchor])
    log_p0 = np.log(sec.price0)
    shares0 = sec.cap0 / fx_local / sec.price0

    shares = np.broadcast_to(shares0, (n_days, n)).copy()
    for i, day, mult in sec.share_events:
        shares[day:, i] *= mult
    ff = np.broadcast_to(sec.ff0, (n_days, n)).copy()
    for i, day, new in sec.ff_events:
        ff[day:, i] = new

    days = np.arange(n_days)
    close = np.empty((n_days, n))
    total_return = np.empty((n_days, n))
    turnover = np.empty((n_days, n))
    for lo in range(0, n, _CHUNK):
        c = slice(lo, min(lo + _CHUNK, n))
        width = c.stop - lo
        cols = np.arange(width)
        r = _unit_t(rng, _T_DOF_IDIO, (n_days, width))
        r *= idio[c] / _SQRT_DAYS
        r += beta[c] * markets[:, mkt_col[c]]
        r += ind_load[c] * industries[:, sec.industry[c]]
        r += ai_load[c] * ai_beta
        r += layers[:, sec.layer[c]]  # zero column for "none"
        # Busier days when the move is large; mean of the factor is about 1.
        busy = np.abs(r) / sd_day[c]
        busy *= 0.4 / 0.8
        busy += 0.6
        noise = rng.standard_normal((n_days, width))
        noise *= 0.5
        noise -= 0.125
        busy *= np.exp(noise, out=noise)
        r += mu[c]
        log_tr = np.cumsum(r, axis=0)
        ex = (days[:, None] - phase[c]) % period[c] == 0
        log_close = np.cumsum(np.where(ex, log_keep[c], 0.0), axis=0)
        log_close += log_tr
        anchor = sec.anchor[c]
        log_tr -= log_tr[anchor, cols] - log_p0[c]
        log_close -= log_close[anchor, cols] - log_p0[c]
        np.exp(log_tr, out=total_return[:, c])
        np.exp(log_close, out=close[:, c])
        busy *= close[:, c]
        busy *= shares[:, c]
        busy *= ff[:, c]
        busy *= sec.velocity[c] / 21.0
        turnover[:, c] = busy

    listed = (days[:, None] >= sec.anchor) & (days[:, None] <= sec.last)
    for arr in (close, total_return, turnover, shares, ff):
        arr[~listed] = np.nan
    for i, first, last in sec.suspensions:
        for arr in (close, total_return, turnover):
            arr[first : last + 1, i] = np.nan
    return {
        "close": close,
        "total_return": total_return,
        "shares_outstanding": shares,
        "free_float_factor": ff,
        "turnover_value": turnover,
        "turnover_shares": turnover / close,
    }


def _size_big_ipos(
    rng: np.random.Generator, sec: _Sec, fields: dict[str, FloatArray], fx_rate: FloatArray
) -> None:
    """Rescale the share count of each big IPO so that it ranks top 5 by cap on day one."""
    to_hkd = sec.market == "HK"
    for i in sorted(np.flatnonzero(sec.big_ipo), key=lambda j: sec.anchor[j]):
        day = sec.anchor[i]
        caps = fields["close"][day] * fields["shares_outstanding"][day]
        caps *= np.where(to_hkd, 1.0, fx_rate[day])
        own = caps[i]
        caps[i] = np.nan
        others = np.sort(caps[~np.isnan(caps)])[::-1]
        fifth = others[min(4, len(others) - 1)] if len(others) else own
        ratio = rng.uniform(1.2, 2.5) * fifth / own
        for name in ("shares_outstanding", "turnover_value", "turnover_shares"):
            fields[name][:, i] *= ratio


# ------------------------------------------------------------------------------- benchmarks


def _rebalance_days(dates: npt.NDArray[np.datetime64]) -> IntArray:
    """Day 0 and the first trading day of each calendar quarter."""
    months = dates.astype("datetime64[M]").astype(np.int64)
    new_quarter = np.flatnonzero((np.diff(months) != 0) & (months[1:] % 3 == 0)) + 1
    return np.concatenate([[0], new_quarter]).astype(np.int64)


def _ffill(a: FloatArray) -> FloatArray:
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    return np.take_along_axis(a, idx, axis=0)


def _benchmarks(
    sec: _Sec, dates: npt.NDArray[np.datetime64], fields: dict[str, FloatArray]
) -> pd.DataFrame:
    n_days = len(dates)
    tr = fields["total_return"]
    rebal = np.concatenate([_rebalance_days(dates), [n_days - 1]])
    # Caps on rebalance days only (keeps memory flat); HK names only below, so already HKD.
    cap = fields["close"][rebal] * fields["shares_outstanding"][rebal]
    ff_cap = cap * fields["free_float_factor"][rebal]
    is_hk = sec.market == "HK"
    tech = (sec.industry == _IT) | (sec.layer != _NONE)
    frames = []
    for name, size, tech_only in _HK_BENCH:
        universe = is_hk & tech if tech_only else is_hk
        level = np.empty(n_days)
        level[0] = 1000.0
        for k, (r, end) in enumerate(pairwise(rebal)):
            cand = np.flatnonzero(universe & ~np.isnan(cap[k]))
            members = cand[np.argsort(-cap[k, cand], kind="stable")[:size]]
            if len(members) == 0:
                level[r + 1 : end + 1] = level[r]
                continue
            w = ff_cap[k, members] / ff_cap[k, members].sum()
            block = _ffill(tr[r : end + 1, members])
            level[r + 1 : end + 1] = level[r] * ((block[1:] / block[0]) @ w)
        frames.append(
            pd.DataFrame({"date": dates.astype("datetime64[ns]"), "index": name, "level": level})
        )
    return pd.concat(frames, ignore_index=True)
