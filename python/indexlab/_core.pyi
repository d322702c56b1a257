"""Type stubs of the private Rust extension module (kept in sync with rust/indexlab-py)."""

from typing import Any, Self, final

import numpy as np
import numpy.typing as npt

__version__: str

def cap_weights(
    market_caps: npt.NDArray[np.float64],
    cap: float,
    caps: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]: ...
def capping_factors(
    market_caps: npt.NDArray[np.float64],
    cap: float,
    caps: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]: ...
def _panic_for_tests() -> None: ...

# ---- resource bounds (rust/indexlab-py/src/limits.rs)
def set_max_alloc_bytes(limit: int | None) -> int: ...
def max_alloc_bytes() -> int: ...
def max_threads() -> int: ...

# ---- backtest (rust/indexlab-py/src/backtest.rs)
METRIC_NAMES: list[str]

def _backtest_batch(
    tr: npt.NDArray[np.float64],
    rebalance: npt.NDArray[np.int64],
    dense: npt.NDArray[np.float64] | None,
    indptr: npt.NDArray[np.int32] | npt.NDArray[np.int64] | None,
    indices: npt.NDArray[np.int32] | npt.NDArray[np.int64] | None,
    data: npt.NDArray[np.float64] | None,
    cost_rate: float,
    cost_rates: npt.NDArray[np.float64] | None,
    base: float,
    allow_short: bool,
    threads: int | None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def _metrics(
    levels: npt.NDArray[np.float64],
    benchmark: npt.NDArray[np.float64] | None,
    rf: float,
    periods_per_year: float,
) -> npt.NDArray[np.float64]: ...

# --- rules (rust/indexlab-py/src/rules.rs)
def monthly_velocity(
    turnover_shares: npt.NDArray[np.float64],
    shares: npt.NDArray[np.float64],
    ff: npt.NDArray[np.float64],
    month: npt.NDArray[np.int64],
    n: int,
    method: str,
) -> tuple[int, npt.NDArray[np.float64]]: ...
def run_reviews(arrays: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]: ...
def market_arrays(
    close: npt.NDArray[np.float64],
    shares: npt.NDArray[np.float64],
    ff: npt.NDArray[np.float64],
    fx: npt.NDArray[np.float64],
    n_currencies: int,
    currency: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
def last_trade_at(
    close: npt.NDArray[np.float64], n: int, at: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]: ...
@final
class ConicProgram:
    """Parameter-affine conic program of a compiled cvxpy problem (indexlab.optimise)."""

    def __new__(
        cls,
        n_theta: int,
        p_pattern: tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]],
        p_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        a_pattern: tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]],
        a_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        q_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        cones: list[tuple[str, int, list[float]]],
    ) -> Self: ...
    @property
    def n(self) -> int: ...
    @property
    def m(self) -> int: ...
    @property
    def n_theta(self) -> int: ...
    def solve_batch(
        self,
        thetas: npt.NDArray[np.float64],
        presolve: bool = True,
        threads: int | None = None,
    ) -> tuple[
        npt.NDArray[np.float64],
        list[str],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
    ]: ...
    def canonical(self, theta: npt.NDArray[np.float64]) -> dict[str, Any]: ...

_Csr = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], int]
_Risk = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]

@final
class IndexShape:
    """The index shape of a compiled problem (indexlab.optimise.structure), solved in Rust."""

    def __new__(
        cls,
        *,
        n: int,
        n_theta: int,
        weight_cols: npt.NDArray[np.int64],
        lo: _Csr,
        lo_weight: npt.NDArray[np.int64],
        hi: _Csr | None,
        hi_weight: npt.NDArray[np.int64] | None,
        c: _Csr,
        risk: _Risk | None,
        groups: tuple[
            npt.NDArray[np.float64], _Csr, _Csr, npt.NDArray[np.bool_], npt.NDArray[np.bool_]
        ]
        | None,
        turnover: tuple[
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
            _Csr,
        ]
        | None,
        aux_cols: npt.NDArray[np.int64],
        aux_from_weights: _Csr,
        aux_from_theta: _Csr,
        p: _Csr,
        q_map: _Csr,
        budget: tuple[_Csr, _Csr, _Csr, _Risk, float, int, _Csr | None] | None,
    ) -> Self: ...
    def solve_batch(
        self,
        parts: list[tuple[int, npt.NDArray[np.float64]]],
        batch: int,
        threads: int | None = None,
        rules: list[int] | None = None,
        theta_out: npt.NDArray[np.float64] | None = None,
        gathers: list[npt.NDArray[np.int64]] | None = None,
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        list[str],
        npt.NDArray[np.uint32],
        npt.NDArray[np.uint32],
        npt.NDArray[np.float64] | None,
        list[npt.NDArray[np.float64]],
    ]: ...

def capped_qp_batch(
    scores: npt.NDArray[np.float64],
    bench: npt.NDArray[np.float64] | None,
    loadings: npt.NDArray[np.float64] | None,
    factor_cov: npt.NDArray[np.float64] | None,
    specific_var: npt.NDArray[np.float64] | None,
    gamma: float,
    lo: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    groups: npt.NDArray[np.float64] | None,
    group_lo: npt.NDArray[np.float64] | None,
    group_hi: npt.NDArray[np.float64] | None,
    prev: npt.NDArray[np.float64] | None = None,
    turnover_cost: npt.NDArray[np.float64] | None = None,
    threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], npt.NDArray[np.uint32]]: ...
