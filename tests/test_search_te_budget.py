"""Tracking-error budgets, liquidity and Connect screens of `search.OptimisedCandidate`.

Every TE here is recomputed with numpy from `search.review_risk_model` (its covariance) and the
parent's published review weights, independently of the solver and of `evaluate`'s own column.
"""

from __future__ import annotations

import re

import indexlab
import numpy as np
import pytest
from indexlab import search
from indexlab.errors import DataError
from indexlab.optimise import RiskModel, ai_chain_model
from search_helpers import parent_reviews

STATUS = re.compile(
    r"^infeasible at review (\d+) \(cut-off .*\): smallest feasible TE budget ([0-9.e+-]+)%"
)


@pytest.fixture(scope="module")
def ds() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=120, years=3, seed=3)


def _parents(ds: indexlab.Dataset, dates: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(cut-off index, parent weights) of the parent review implemented on each date."""
    return [(cut, bench) for cut, _, bench in parent_reviews(ds, dates)]


def ex_ante(ds: indexlab.Dataset, cutoff: int, w: np.ndarray, bench: np.ndarray) -> float:
    sigma = search.review_risk_model(ds, cutoff).covariance()
    return float(np.sqrt((w - bench) @ sigma @ (w - bench)))


def test_every_review_meets_the_budget_and_a_looser_budget_buys_ai_exposure(
    ds: indexlab.Dataset,
) -> None:
    cands = [
        search.OptimisedCandidate(name=f"te{b}", te_weight=0.0, te_budget=b) for b in (0.05, 0.02)
    ]
    res = search.evaluate(ds, cands, keep_weights=True, progress=False)
    t = res.table
    assert (t["status"] == "ok").all(), t["status"].tolist()
    scores = ds.securities["ai_score"].to_numpy()
    exposure = {}
    for name, budget in (("te0.05", 0.05), ("te0.02", 0.02)):
        dates, ids, w = res.weights[name].weights_matrix()
        assert list(ids) == list(ds.ids)
        tes = []
        for (cutoff, bench), wj in zip(_parents(ds, dates), w, strict=True):
            assert (
                wj.sum() == pytest.approx(1.0, abs=1e-12)
                and wj.min() >= 0
                and wj.max() <= 0.08 + 1e-12
            )
            tes.append(ex_ante(ds, cutoff, wj, bench))
        assert max(tes) <= budget + 1e-6
        assert t.loc[name, "ex_ante_te"] == pytest.approx(np.mean(tes), rel=1e-9)
        assert t.loc[name, "te_budget"] == budget
        exposure[name] = w @ scores
    # A larger feasible set: at least as much AI exposure at every review, more over the run.
    assert (exposure["te0.05"] >= exposure["te0.02"] - 1e-9).all()
    assert t.loc["te0.05", "ai_exposure"] > t.loc["te0.02", "ai_exposure"]
    assert np.isfinite(t["tracking_error"]).all()  # the realised TE, next to the ex-ante one


def test_an_impossible_budget_reports_the_smallest_feasible_one(ds: indexlab.Dataset) -> None:
    res = search.evaluate(
        ds,
        [
            search.OptimisedCandidate(name="tiny", te_budget=1e-6),
            search.OptimisedCandidate(name="free"),  # keeps the search from failing as a whole
        ],
        progress=False,
    )
    m = STATUS.match(res.table.loc["tiny", "status"])
    assert m, res.table.loc["tiny", "status"]
    review, smallest = int(m.group(1)), float(m.group(2)) / 100
    assert smallest > 1e-6
    assert np.isnan(res.table.loc["tiny", "ex_ante_te"])

    # Just above the reported budget that review is feasible; just below it is not.
    def first_failure(budget: float) -> int | None:
        cands = [search.OptimisedCandidate(name="b", te_budget=budget), search.OptimisedCandidate()]
        status = search.evaluate(ds, cands, progress=False).table.loc["b", "status"]
        found = STATUS.match(status)
        assert status == "ok" or found, status
        return int(found.group(1)) if found else None

    above = first_failure(smallest * 1.001)
    assert above is None or above > review
    assert first_failure(smallest * 0.999) == review


def test_connect_and_liquidity_screens(ds: indexlab.Dataset) -> None:
    connect = ds.securities["connect_eligible"].fillna(False).to_numpy(dtype=bool)
    cands = [
        search.OptimisedCandidate(name="connect", connect_only=True, te_budget=0.3),
        search.OptimisedCandidate(name="dry", min_adv_hkd=1e18),
        search.OptimisedCandidate(name="free"),
    ]
    res = search.evaluate(ds, cands, keep_weights=True, progress=False)
    t = res.table
    assert t.loc["connect", "status"] == "ok"
    _, _, w = res.weights["connect"].weights_matrix()
    assert not (w[:, ~connect] > 0).any()
    assert "weight cap: 0 names listed" in t.loc["dry", "status"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"te_budget": -0.01},
        {"te_budget": float("nan")},
        {"te_budget": float("inf")},
        {"te_budget": "0.05"},
        {"min_adv_hkd": -1.0},
        {"min_adv_hkd": float("nan")},
        {"connect_only": "yes"},
    ],
)
def test_bad_arguments_are_data_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(DataError, match=next(iter(kwargs))):
        search.OptimisedCandidate(name="bad", **kwargs)  # type: ignore[arg-type]


def test_a_batch_where_every_budget_is_infeasible() -> None:
    # Two names, the benchmark all in a name capped at 60%: the smallest TE is > 0.
    rm = RiskModel(np.ones((2, 1)), np.eye(1) * 0.04, np.full(2, 0.01))
    model = ai_chain_model(range(2), [1.0, 0.0], [0.5, 1.0], rm, cap=0.6, te_budget=1e-6)
    sol = model.compile().solve_batch(
        {
            "mask": np.ones((2, 2)),
            "scores": np.tile([0.5, 1.0], (2, 1)),
            "bench": np.tile([1.0, 0.0], (2, 1)),
            "te_budget": np.array([1e-6, 1e-3]),
        }
    )
    assert sol.status == ["infeasible", "infeasible"]
    # w = (0.6, 0.4): TE^2 = 0.4^2 * 0.01 * 2 (the factor part cancels)
    assert sol.smallest_te_budget is not None
    np.testing.assert_allclose(sol.smallest_te_budget, np.sqrt(0.4**2 * 0.02), rtol=1e-9)
