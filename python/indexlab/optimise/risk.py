"""Factor risk models for tracking-error terms.

Covariance model: ``Sigma = F Omega F' + diag(d)`` with loadings ``F`` (names x factors), factor
covariance ``Omega`` and specific variances ``d``. Squared tracking error of active weights
``a = w - b`` is ``||L' F' a||^2 + ||sqrt(d) * a||^2`` with ``Omega = L L'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from indexlab.errors import DataError

__all__ = ["RiskModel"]


@dataclass(frozen=True)
class RiskModel:
    """A factor risk model ``Sigma = F Omega F' + diag(d)``.

    Attributes
    ----------
    loadings : ndarray, shape (n, k)
        Factor loadings ``F``.
    factor_cov : ndarray, shape (k, k)
        Factor covariance ``Omega`` (symmetric positive semidefinite).
    specific_var : ndarray, shape (n,)
        Specific (idiosyncratic) variances ``d >= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> rm = RiskModel(np.ones((3, 1)), np.eye(1) * 0.04, np.full(3, 0.01))
    >>> rm.covariance().shape
    (3, 3)
    """

    loadings: npt.NDArray[np.float64]
    factor_cov: npt.NDArray[np.float64]
    specific_var: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        f = np.asarray(self.loadings, dtype=np.float64)
        o = np.asarray(self.factor_cov, dtype=np.float64)
        d = np.asarray(self.specific_var, dtype=np.float64)
        if f.ndim != 2:
            raise DataError(f"loadings: expected a 2-D (names x factors) array, found {f.shape}")
        n, k = f.shape
        if o.shape != (k, k):
            raise DataError(f"factor_cov: expected shape ({k}, {k}), found {o.shape}")
        if d.shape != (n,):
            raise DataError(f"specific_var: expected shape ({n},), found {d.shape}")
        for name, a in (("loadings", f), ("factor_cov", o), ("specific_var", d)):
            if not np.isfinite(a).all():
                raise DataError(f"{name}: expected finite values, found NaN or inf")
        if (d < 0).any():
            i = int(np.argmin(d))
            raise DataError(f"specific_var: expected >= 0, found {d[i]} at name {i}")
        if not np.allclose(o, o.T, atol=1e-12):
            raise DataError("factor_cov: expected a symmetric matrix")
        object.__setattr__(self, "loadings", f)
        object.__setattr__(self, "factor_cov", o)
        object.__setattr__(self, "specific_var", d)

    @property
    def n_names(self) -> int:
        return int(self.loadings.shape[0])

    @property
    def n_factors(self) -> int:
        return int(self.loadings.shape[1])

    def covariance(self) -> npt.NDArray[np.float64]:
        """The full covariance ``F Omega F' + diag(d)``."""
        return self.loadings @ self.factor_cov @ self.loadings.T + np.diag(self.specific_var)

    def factor_root(self) -> npt.NDArray[np.float64]:
        """``G = L' F'`` (factors x names) with ``Omega = L L'``, so ``a' F Omega F' a =
        ||G a||^2``. Uses a symmetric eigen-root, so a singular ``Omega`` is fine."""
        vals, vecs = np.linalg.eigh(self.factor_cov)
        if vals.min() < -1e-10 * max(1.0, abs(vals.max())):
            raise DataError(
                f"factor_cov: expected positive semidefinite, found eigenvalue {vals.min()}"
            )
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))  # Omega = root root'
        return np.ascontiguousarray(root.T @ self.loadings.T)

    @classmethod
    def from_returns(
        cls,
        returns: npt.ArrayLike,
        n_factors: int = 10,
        halflife: float = 63.0,
        shrinkage: float = 0.2,
    ) -> RiskModel:
        """Statistical factor model from a (dates x names) matrix of returns.

        Method: exponentially weighted covariance (weight ``0.5 ** (age / halflife)``, the latest
        row has age 0; NaN returns count as 0, i.e. not traded), its top ``n_factors``
        eigenvectors as loadings and eigenvalues as a diagonal factor covariance (PCA), and the
        residual diagonal ``diag(Sigma) - diag(F Omega F')`` as specific variance, floored at
        1e-12 and shrunk toward its cross-sectional mean: ``d = (1 - s) d + s mean(d)``. The
        shrinkage damps the noisy residuals of short histories.

        Examples
        --------
        >>> import numpy as np
        >>> r = np.random.default_rng(0).normal(0, 0.02, size=(250, 20))
        >>> RiskModel.from_returns(r, n_factors=3).loadings.shape
        (20, 3)
        """
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim != 2:
            raise DataError(f"returns: expected a 2-D (dates x names) array, found {r.shape}")
        t, n = r.shape
        if not 1 <= n_factors <= n:
            raise DataError(f"n_factors: expected between 1 and {n} (names), found {n_factors}")
        if t < 2:
            raise DataError(f"returns: expected at least 2 dates, found {t}")
        if not halflife > 0:
            raise DataError(f"halflife: expected > 0, found {halflife}")
        if not 0.0 <= shrinkage <= 1.0:
            raise DataError(f"shrinkage: expected within [0, 1], found {shrinkage}")
        r = np.where(np.isfinite(r), r, 0.0)
        age = np.arange(t - 1, -1, -1, dtype=np.float64)
        wt = 0.5 ** (age / halflife)
        wt /= wt.sum()
        x = r - wt @ r
        cov = (x * wt[:, None]).T @ x
        vals, vecs = np.linalg.eigh(cov)
        top = np.argsort(vals)[::-1][:n_factors]
        lam = np.clip(vals[top], 0.0, None)
        f = vecs[:, top]
        resid = np.clip(np.diag(cov) - (f**2) @ lam, 1e-12, None)
        d = (1.0 - shrinkage) * resid + shrinkage * resid.mean()
        return cls(f, np.diag(lam), d)
