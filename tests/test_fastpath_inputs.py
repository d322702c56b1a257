"""The fast path's workers read a batch's parameters: they check every value (finite, of its
parameter's sign), keep the rows of theta they read for the duals and write each variable's
values. A refused value is reported as the other path reports it (parameter, instance, flat
index); the values are the canonical point's entries, bit for bit; the kept rows are theta as
solved."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from indexlab.errors import DataError
from indexlab.optimise import RiskModel, compile
from indexlab.optimise.compile import _VarSlot

N, K, B = 12, 2, 6


def index_problem(scores_sign: str | None = None) -> tuple[cp.Problem, dict[str, np.ndarray]]:
    """The index shape; ``scores_sign`` gives the scores that sign attribute (and values of
    that sign)."""
    rng = np.random.default_rng(21)
    rm = RiskModel(rng.normal(0, 0.3, (N, K)), np.diag([0.04, 0.02]), np.full(N, 0.03))
    bench = rng.dirichlet(np.ones(N))
    w = cp.Variable(N, name="w")
    f = cp.Variable(K, name="f")
    mask = cp.Parameter(N, nonneg=True, name="mask")
    scores = cp.Parameter(N, name="scores", **({scores_sign: True} if scores_sign else {}))
    active = w - bench
    risk = cp.sum_squares(f) + cp.sum_squares(cp.multiply(np.sqrt(rm.specific_var), active))
    cons = [cp.sum(w) == 1, w >= 0, w <= 0.4 * mask, f == rm.factor_root() @ active]
    problem = cp.Problem(cp.Maximize(scores @ w - 3.0 * risk), cons)
    masks = np.zeros((B, N))
    for i in range(B):
        masks[i, rng.choice(N, 6, replace=False)] = 1.0
    values = 0.1 + rng.random((B, N))
    if scores_sign in ("nonpos", "neg"):
        values = -values
    return problem, {"mask": masks, "scores": values}


def same_refusal(compiled: Any, bad: dict[str, np.ndarray]) -> str:
    """The message both paths refuse ``bad`` with (checked equal)."""
    with pytest.raises(DataError) as generic:
        compiled.solve_batch(bad, presolve=False)
    with pytest.raises(DataError) as fast:
        compiled.solve_batch(bad)
    assert str(fast.value) == str(generic.value)
    return str(fast.value)


@pytest.fixture(scope="module")
def case() -> tuple[object, dict[str, np.ndarray]]:
    problem, params = index_problem()
    compiled = compile(problem)
    assert compiled.path == "fast"
    return compiled, params


FINITE = "expected finite values, found"
SIGNED = r"expected nonnegative values \(Parameter\(nonneg=True\)\), found"


@pytest.mark.parametrize(
    ("name", "i", "k", "value", "message"),
    [
        ("scores", 3, 7, np.nan, f"'scores' instance 3: {FINITE} nan at flat index 7"),
        ("scores", 0, 0, np.inf, f"'scores' instance 0: {FINITE} inf at flat index 0"),
        ("mask", 5, 11, -np.inf, f"'mask' instance 5: {FINITE} -inf at flat index 11"),
        ("mask", 2, 4, -0.5, f"'mask' instance 2: {SIGNED} -0.5 at flat index 4"),
    ],
)
def test_a_refused_value_is_named_as_on_the_other_path(
    case: tuple, name: str, i: int, k: int, value: float, message: str
) -> None:
    compiled, params = case
    bad = {key: v.copy() for key, v in params.items()}
    bad[name][i, k] = value
    with pytest.raises(DataError, match=message):
        compiled.solve_batch(bad)
    with pytest.raises(DataError, match=message):
        compiled.solve_batch(bad, presolve=False)  # the generic path checks in Python
    # The refusal lost nothing: the next batch solves as on a fresh compile.
    again = compiled.solve_batch(params)
    fresh = compile(index_problem()[0]).solve_batch(params)
    np.testing.assert_array_equal(again.values["w"], fresh.values["w"])


def test_with_two_bad_parameters_both_paths_name_the_same_value(case: tuple) -> None:
    # The workers may meet either first; the message is the one the generic path gives.
    compiled, params = case
    bad = {key: v.copy() for key, v in params.items()}
    bad["mask"][4, 1] = -1.0
    bad["scores"][0, 2] = np.nan
    assert "instance" in same_refusal(compiled, bad)


def test_values_are_the_canonical_point_bit_for_bit(case: tuple) -> None:
    compiled, params = case
    sol = compiled.solve_batch(params)
    _, arrays = compiled._checked(params)
    parts = [(compiled._param_cols[n], a) for n, a in arrays.items()]
    x = compiled._structure.solve(parts, B, lambda: compiled.theta(params)).x
    for slot in compiled._variables:
        v = sol.values[slot.name]
        assert v.shape == (B, *slot.shape) and v.flags.c_contiguous and v.flags.writeable
        np.testing.assert_array_equal(v, x[:, slot.offset : slot.offset + slot.size])
    # The values are the caller's: writing to them leaves the duals' canonical point alone.
    before = np.array(sol.duals[compiled.problem.constraints[0]])
    sol.values["w"][:] = 0.0
    np.testing.assert_array_equal(sol.duals[compiled.problem.constraints[0]], before)


def test_the_workers_keep_theta_as_they_read_it(case: tuple) -> None:
    compiled, params = case
    _, arrays = compiled._checked(params)
    names = list(arrays)
    parts = [(compiled._param_cols[n], arrays[n]) for n in names]
    kept = np.full((B, compiled._program.n_theta), -7.0)
    index = np.array([3, 0, 5], dtype=np.int64)
    shape = compiled._structure._shape
    x, *_, gathered = shape.solve_batch(parts, B, rules=[0, 0], theta_out=kept, gathers=[index])
    np.testing.assert_array_equal(kept, compiled.theta(params))
    np.testing.assert_array_equal(gathered[0], x[:, index])
    # The Rust check names the instance and the theta column; the wrong sign is caught there.
    mask = arrays["mask"].copy()
    mask[2, 0] = -1.0
    col = compiled._param_cols["mask"]
    refused = [(c, mask if n == "mask" else a) for n, (c, a) in zip(names, parts, strict=True)]
    rules = [1 if n == "mask" else 0 for n in names]
    refusal = rf"instance 2 .*theta column {col}: expected finite values of its sign"
    with pytest.raises(DataError, match=refusal):
        shape.solve_batch(refused, B, rules=rules)
    with pytest.raises(DataError, match="one per part"):
        shape.solve_batch(parts, B, rules=[1])
    with pytest.raises(DataError, match=r"rules\[0\]: 16"):
        shape.solve_batch(parts, B, rules=[16, 0])
    with pytest.raises(DataError, match=r"theta_out: expected shape"):
        shape.solve_batch(parts, B, theta_out=kept[:, 1:])
    with pytest.raises(DataError, match="gather"):
        shape.solve_batch(parts, B, gathers=[np.array([x.shape[1]], dtype=np.int64)])


@pytest.mark.parametrize("attr", ["nonneg", "pos", "nonpos", "neg"])
def test_every_sign_attribute_is_checked_by_the_workers(attr: str) -> None:
    problem, params = index_problem(scores_sign=attr)
    compiled = compile(problem)
    assert compiled.path == "fast"
    assert set(compiled.solve_batch(params).status) == {"optimal"}
    # A zero breaks pos and neg; a value of the other sign breaks all four.
    for wrong in ([0.0] if attr in ("pos", "neg") else []) + [-params["scores"][1, 3]]:
        bad = {k: v.copy() for k, v in params.items()}
        bad["scores"][1, 3] = wrong
        message = same_refusal(compiled, bad)
        assert "'scores' instance 1: expected" in message
        assert f"Parameter({attr}=True)" in message


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4)])
def test_the_gather_index_puts_fortran_storage_in_c_order(shape: tuple[int, ...]) -> None:
    # cvxpy stores a variable in Fortran order; the value of a 2 x 3 X at [0, 1] is stored at
    # offset + 2. Checked against the generic path's reshape of the canonical point.
    size = int(np.prod(shape, dtype=int))
    slot = _VarSlot(name="X", shape=shape, offset=7, size=size)
    x = np.arange(2 * (7 + size + 3), dtype=float).reshape(2, -1)
    np.testing.assert_array_equal(x[:, slot.c_order_index()].reshape(2, *shape), slot.values(x))
    if shape == (2, 3):
        assert slot.c_order_index()[1] == 7 + 2
