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
