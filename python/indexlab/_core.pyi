"""Type stubs of the private Rust extension module (kept in sync with rust/indexlab-py)."""

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
    threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], npt.NDArray[np.uint32]]: ...
