"""Smoke test of the installed wheel, run by .ci/wheel_check in a fresh virtual environment
(no Rust toolchain on PATH, outside the source tree): every module imports, or names the extra
it needs, and each workflow step gives a checked answer."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import sys
import tempfile
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
from indexlab import _core

#: Optional extras a plain install may lack (pyproject's optional-dependencies).
EXTRAS = {
    "matplotlib",
    "fastapi",
    "uvicorn",
    "dask",
    "distributed",
    "yfinance",
    "akshare",
    "exchange_calendars",
    "polars",
    "PIL",
}


def check(cond: bool, what: str) -> None:
    if not cond:
        sys.exit(f"wheel smoke: {what}")
    print(f"ok  {what}")


def main() -> None:
    check(shutil.which("cargo") is None and shutil.which("rustc") is None, "no Rust toolchain")
    check("site-packages" in indexlab.__file__, f"indexlab from {indexlab.__file__}")
    check(_core.__file__ is not None and _core.__file__.endswith(".abi3.so"), "abi3 extension")
    extras: list[str] = []
    for mod in pkgutil.walk_packages(indexlab.__path__, prefix="indexlab."):
        try:
            importlib.import_module(mod.name)
        except ImportError as err:
            if err.name is None or err.name.split(".")[0] not in EXTRAS:
                raise
            extras.append(f"{mod.name} ({err.name})")
    check(True, f"every module imports (needing an extra: {', '.join(extras) or 'none'})")

    w = indexlab.cap_weights([5.0, 3.0, 1.0, 1.0], cap=0.4)
    check(np.allclose(w, [0.4, 0.36, 0.12, 0.12]), "capping: min(c, k m) by hand")

    ds = indexlab.datasets.hk_tech()
    check(len(ds.ids) > 500 and ds.universe_complete_until is not None, "bundled hk_tech sample")
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start="2025-01-01")
    check(len(hist.changes()) > 0, "rules: HSTECH reviews on the sample")

    tr = np.array([[1.0, 1.0], [1.1, 0.9], [1.21, 0.99]])
    res = indexlab.backtest_batch(tr, np.array([0]), np.array([[[0.5, 0.5]]]))
    check(
        np.allclose(np.asarray(res.levels)[0, -1], 1000 * (0.5 * 1.21 + 0.5 * 0.99)),
        "backtest: level by hand",
    )

    import cvxpy as cp
    from indexlab import optimise

    x = cp.Variable(3, name="x")
    s = cp.Parameter(3, name="s")
    prob = cp.Problem(cp.Maximize(s @ x - cp.sum_squares(x)), [cp.sum(x) == 1, x >= 0])
    sol = optimise.compile(prob).solve_batch({"s": np.array([[1.0, 0.0, 0.0]])})
    s.value = np.array([1.0, 0.0, 0.0])
    prob.solve(solver=cp.CLARABEL)
    check(np.allclose(sol.values["x"][0], x.value, atol=1e-6), "optimise: equals cvxpy's solve")

    # A PSD cone: Clarabel's BLAS/LAPACK calls go to SciPy's routines (scipy_blas.rs). The
    # smallest trace of a PSD X with X[0, 1] >= t is 2t, at X = t [[1, 1], [1, 1]].
    big_x = cp.Variable((2, 2), symmetric=True, name="X")
    t = cp.Parameter(name="t")
    sdp = cp.Problem(cp.Minimize(cp.trace(big_x)), [big_x >> 0, big_x[0, 1] >= t])
    sol = optimise.compile(sdp).solve_batch({"t": np.array([1.0, 3.0])})
    check(
        np.allclose(sol.objective, [2.0, 6.0], atol=1e-6)
        and np.allclose(sol.values["X"][1], 3.0 * np.ones((2, 2)), atol=1e-4),
        "optimise: PSD cone by hand",
    )

    from indexlab.api import handle

    doc = handle(
        {
            "api_version": "1",
            "kind": "backtest",
            "dataset": {"name": "synthetic", "n_securities": 120, "years": 2, "seed": 3},
            "schedules": {"tech20": {"rules": "HSTECH", "overrides": {"n": 20}}},
            "benchmark": "HSTECH",
        }
    )
    ok = "tech20" in doc.get("result", {}).get("metrics", {})
    check(ok, "api: backtest" if ok else f"api: backtest ({doc.get('error')})")

    from indexlab import sources

    with tempfile.TemporaryDirectory() as tmp:
        days = pd.bdate_range("2026-01-05", periods=3)
        rows = pd.DataFrame(
            {
                "date": days,
                "close": [10.0, 10.5, 10.2],
                "dividend": 0.0,
                "split": 0.0,
                "adjusted_close": np.nan,
                "turnover_shares": 1e6,
                "turnover_value": 1e7,
                "shares_outstanding": 5e8,
                "retrieved": days[-1],
            }
        )
        sources.Cache(tmp).write(sources.Cached("0700.HK", "yfinance", rows, "0700.HK", "HKD"))
        master = pd.DataFrame({"id": ["0700.HK"], "industry": ["Information Technology"]})
        got = sources.load_cached(["0700.HK"], securities=master, cache_dir=Path(tmp))
        check(
            got.field("close").ravel().tolist() == [10.0, 10.5, 10.2], "sources: cache -> Dataset"
        )
    print(f"wheel smoke passed ({indexlab.__version__})")


if __name__ == "__main__":
    main()
