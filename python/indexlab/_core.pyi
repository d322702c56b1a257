"""Type stubs of the private Rust extension module (kept in sync with rust/indexlab-py)."""

from typing import Any

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

class ConicProgram:
    """Parameter-affine conic program of a compiled cvxpy problem (indexlab.optimise)."""

    def __init__(
        self,
        n_theta: int,
        p_pattern: tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]],
        p_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        a_pattern: tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]],
        a_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        q_map: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        cones: list[tuple[str, int]],
    ) -> None: ...
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
    ]: ...
    def canonical(self, theta: npt.NDArray[np.float64]) -> dict[str, Any]: ...
