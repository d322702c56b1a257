"""Lenient coercion and silent wrong results: the dataset, backtest() and IndexRules
refuse what is not what they expect, with a DataError that names the column, security and date
(or the argument, schedule or rules field), instead of guessing."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_fx, tiny_panel, tiny_securities
from hypothesis import given, settings
from hypothesis import strategies as st
from indexlab import DataError, Dataset, rules
from indexlab.rules import IndexRules
from indexlab.rules.model import RuleFieldError

# ------------------------------------------------------------------------------------ dataset


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize(
    "column",
    [
        "close",
        "total_return",
        "shares_outstanding",
        "free_float_factor",
        "turnover_value",
        "turnover_shares",
    ],
)
def test_infinite_panel_values_are_refused(column: str, value: float) -> None:
    panel = tiny_panel()
    panel.loc[2, column] = value  # 0700.HK on 2025-01-03
    with pytest.raises(DataError, match=rf"'{column}': security '0700.HK' on 2025-01-03 is"):
        Dataset.from_frames(tiny_securities(), panel, fx=tiny_fx())


def test_infinite_values_refused_from_arrays_too() -> None:
    ds = Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx())
    fields = {k: np.array(v) for k, v in ds.fields.items()}
    fields["close"][1, 2] = np.inf
    with pytest.raises(DataError, match=r"'close': security '688256.SH' on 2025-01-03 is inf"):
        Dataset.from_arrays(ds.securities, ds.dates, fields, fx=tiny_fx())


@pytest.mark.parametrize("value", [np.inf, -np.inf, "1.07x"])
def test_infinite_or_text_fx_is_refused(value: object) -> None:
    fx = pd.DataFrame({"date": ["2025-01-01"], "currency": ["CNY"], "to_hkd": [value]})
    with pytest.raises(DataError, match=r"fx column 'to_hkd': 'CNY' on 2025-01-01"):
        Dataset.from_frames(tiny_securities(), tiny_panel(), fx=fx)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_benchmark_level_is_refused(value: float) -> None:
    bench = pd.DataFrame(
        {"date": ["2025-01-02", "2025-01-03"], "index": ["HSTECH", "HSTECH"], "level": [1.0, value]}
    )
    with pytest.raises(DataError, match=r"benchmarks column 'level': 'HSTECH' on 2025-01-03"):
        Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx(), benchmarks=bench)


@pytest.mark.parametrize("text", ["n/a", "412,0", "True"])
def test_text_in_a_numeric_column_is_refused(text: str) -> None:
    panel = tiny_panel()
    panel["close"] = panel["close"].astype(object)
    panel.loc[2, "close"] = text
    with pytest.raises(
        DataError,
        match=rf"'close': security '0700.HK' on 2025-01-03 is '{text}'; expected a number",
    ):
        Dataset.from_frames(tiny_securities(), panel, fx=tiny_fx())


def test_text_refused_from_arrays() -> None:
    ds = Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx())
    fields: dict[str, object] = dict(ds.fields)
    close = ds.fields["close"].astype(object)
    close[2, 0] = "400 HKD"
    fields["close"] = close
    with pytest.raises(DataError, match=r"'close': security '0700.HK' on 2025-01-06 is '400 HKD'"):
        Dataset.from_arrays(ds.securities, ds.dates, fields, fx=tiny_fx())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["False", "True", "false"], [False, True, False]),
        (["true", "0", "1"], [True, False, True]),
        ([0, 1, 0], [False, True, False]),
        ([np.False_, np.True_, False], [False, True, False]),
    ],
)
def test_boolean_text_is_read_as_written(given: list, expected: list[bool]) -> None:
    sec = tiny_securities()
    sec["wvr"] = pd.Series(given, dtype=object)
    sec["connect_eligible"] = pd.Series(given, dtype=object)
    ds = Dataset.from_frames(sec, tiny_panel(), fx=tiny_fx())
    assert ds.securities["wvr"].tolist() == expected
    assert ds.securities["connect_eligible"].tolist() == expected
    assert ds.securities["wvr"].dtype == np.bool_


@pytest.mark.parametrize("bad", ["no", "FALSE", "yes", 2, 0.5, None, np.nan])
def test_other_boolean_values_are_refused(bad: object) -> None:
    sec = tiny_securities()
    sec["wvr"] = pd.Series([False, bad, False], dtype=object)
    with pytest.raises(DataError, match=r"securities column 'wvr': security '9988.HK' has"):
        Dataset.from_frames(sec, tiny_panel(), fx=tiny_fx())


def test_classification_booleans_are_checked() -> None:
    hist = pd.DataFrame(
        {"id": ["0700.HK", "0700.HK"], "valid_from": ["2020-01-01", "2024-01-01"]}
        | {"wvr": ["False", "maybe"]}
    )
    with pytest.raises(
        DataError, match=r"classification column 'wvr': security '0700.HK' from 2024-01-01"
    ):
        Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx(), classification=hist)
    hist["wvr"] = ["True", "False"]
    ds = Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx(), classification=hist)
    assert ds.classification is not None
    assert ds.classification["wvr"].tolist() == [True, False]


def _leading_zero_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    sec = tiny_securities()
    sec["id"] = ["0700", "000001", "688256"]
    panel = tiny_panel()
    panel["id"] = panel["id"].map({"0700.HK": "0700", "9988.HK": "000001", "688256.SH": "688256"})
    return sec, panel, tiny_fx()


def test_csv_ids_keep_leading_zeros(tmp_path: Path) -> None:
    sec, panel, fx = _leading_zero_frames()
    sec.to_csv(tmp_path / "securities.csv", index=False)
    panel.to_csv(tmp_path / "panel.csv", index=False)
    fx.to_csv(tmp_path / "fx.csv", index=False)
    bench = pd.DataFrame({"date": ["2025-01-02"], "index": ["000300"], "level": [3900.0]})
    bench.to_csv(tmp_path / "benchmarks.csv", index=False)
    ds = indexlab.load(tmp_path)
    assert list(ds.ids) == ["0700", "000001", "688256"]
    assert list(ds.benchmarks.columns) == ["000300"]


def test_load_wraps_parser_errors(tmp_path: Path) -> None:
    (tmp_path / "securities.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"securities.parquet is not a readable parquet table"):
        indexlab.load(tmp_path)


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    ds = Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx())
    out = tmp_path / "ds"
    ds.save(out)
    before = (out / "panel.parquet").read_bytes()
    with pytest.raises(DataError, match=r"already exists and is not empty; pass overwrite=True"):
        ds.save(out)
    assert (out / "panel.parquet").read_bytes() == before
    ds.save(out, overwrite=True)
    (tmp_path / "empty").mkdir()
    ds.save(tmp_path / "empty")  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        ds.save(tmp_path / "file", overwrite=True)


def test_from_arrays_leaves_the_callers_arrays_writeable() -> None:
    ds = Dataset.from_frames(tiny_securities(), tiny_panel(), fx=tiny_fx())
    mine = {k: np.array(v) for k, v in ds.fields.items()}
    built = Dataset.from_arrays(ds.securities, ds.dates, mine, fx=tiny_fx())
    assert all(a.flags.writeable for a in mine.values())
    assert not built.field("close").flags.writeable
    mine["close"][0, 0] = 1.0  # the caller's edit does not reach the dataset
    assert built.field("close")[0, 0] == 410.0


# ---------------------------------------------------------------------------------- backtest()


@pytest.fixture(scope="module")
def market() -> Dataset:
    return indexlab.datasets.synthetic(n_securities=10, years=1, seed=3)


def _schedule(ds: Dataset, ids: list[str] | None = None, w: list[float] | None = None) -> object:
    ids = list(ds.ids[:2]) if ids is None else ids
    return indexlab.Schedule([ds.dates[5]], ids, [w or [1 / len(ids)] * len(ids)])


def test_schedule_named_benchmark_is_refused(market: Dataset) -> None:
    s = _schedule(market)
    bench_name = str(market.benchmarks.columns[0])
    with pytest.raises(DataError, match="a schedule is named 'benchmark'"):
        indexlab.backtest(market, {"benchmark": s}, benchmark=bench_name)
    with pytest.raises(DataError, match="a schedule is named 'benchmark'"):
        indexlab.backtest(market, {"benchmark": s, "other": s}, benchmark=s)
    res = indexlab.backtest(market, {"benchmark": s}, benchmark=None)
    assert list(res.levels.columns) == ["benchmark"]


def test_schedule_keys_that_share_a_name_are_refused(market: Dataset) -> None:
    s = _schedule(market)
    with pytest.raises(DataError, match=r"schedules keyed 1 and '1' share the name '1'"):
        indexlab.backtest(market, {1: s, "1": s}, benchmark=None)


def test_duplicate_ids_in_a_schedule_are_refused(market: Dataset) -> None:
    a = str(market.ids[0])
    s = _schedule(market, [a, str(market.ids[1]), a], [0.2, 0.5, 0.3])
    with pytest.raises(DataError, match=rf"schedule 'x' lists id '{a}' 2 times"):
        indexlab.backtest(market, {"x": s}, benchmark=None)


# ------------------------------------------------------------------------------ IndexRules


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n": math.inf}, "selection.n"),
        ({"n": 30.5}, "selection.n"),
        ({"n": "30"}, "selection.n"),
        ({"n": True}, "selection.n"),
        ({"cap": True}, "weighting.cap"),
        ({"cap": "0.1"}, "weighting.cap"),
        ({"cap": 0.1 + 0j}, "weighting.cap"),
        ({"alpha": math.nan}, "weighting.alpha"),
        ({"buffer": math.nan}, "selection.buffer"),
        ({"eligibility.min_ff_mcap_hkd": math.nan}, "eligibility.min_ff_mcap_hkd"),
        ({"eligibility.min_adt_hkd": math.inf}, "eligibility.min_adt_hkd"),
        ({"eligibility.min_ff_mcap_hkd": -1.0}, "eligibility.min_ff_mcap_hkd"),
        ({"selection.fast_entry_days": 10**30}, "selection.fast_entry_days"),
        ({"universe.markets": "HK"}, "universe.markets"),
        ({"universe.tech_theme": "yes"}, "universe.tech_theme"),
        ({"calendar.cutoff_months": [3, 6.5]}, "calendar.cutoff_months[1]"),
        ({"name": 7}, "rules.name"),
    ],
)
def test_rules_numbers_are_checked(change: dict, field: str) -> None:
    with pytest.raises(DataError, match=re.escape(f"'{field}': expected")) as err:
        rules.HSTECH.replace(**change)
    assert isinstance(err.value, RuleFieldError)
    assert err.value.field == field.split("[")[0]  # the field, for the API's `where`


def test_whole_float_counts_are_accepted() -> None:
    r = rules.HSTECH.replace(n=40.0)
    assert r.selection.n == 40 and isinstance(r.selection.n, int)


def test_rules_from_json_with_bad_numbers_are_data_errors() -> None:
    doc = rules.HSTECH.to_dict()
    doc["weighting"]["alpha"] = float("nan")
    with pytest.raises(DataError, match="'weighting.alpha': expected a finite number, found nan"):
        IndexRules.from_dict(doc)


@pytest.mark.parametrize(
    "name",
    ["AI 🤖 chain", 'say "hi"', "back\\slash", "tab\there\nnew line", "\x7f\x00", "恒生科技"],
)
def test_to_toml_reads_back(name: str) -> None:
    r = rules.HSTECH.replace(name=name, description=name)
    assert IndexRules.from_toml(r.to_toml()) == r
    assert IndexRules.from_json(r.to_json()) == r


def test_lone_surrogate_is_refused_in_a_name() -> None:
    with pytest.raises(DataError, match="'rules.name': expected valid Unicode text"):
        rules.HSTECH.replace(name="bad \ud800")


@settings(max_examples=200, deadline=None)
@given(name=st.text(), description=st.text(max_size=50), n=st.integers(1, 500))
def test_toml_and_json_round_trip(name: str, description: str, n: int) -> None:
    r = rules.HSTECH.replace(name=name, description=description, n=n)
    text = r.to_toml()
    tomllib.loads(text)  # valid TOML
    assert IndexRules.from_toml(text) == r
    assert IndexRules.from_json(r.to_json()) == r


@pytest.mark.parametrize(
    "kwargs", [{"participation": -0.2}, {"participation": float("nan")}, {"liquidity_days": 0}]
)
def test_evaluate_rejects_a_negative_or_missing_liquidity_assumption(kwargs: dict) -> None:
    from indexlab import search

    ds = indexlab.datasets.synthetic(n_securities=60, years=1, seed=1)
    name = next(iter(kwargs))
    with pytest.raises(indexlab.DataError, match=name):
        search.evaluate(ds, [indexlab.rules.HSTECH], progress=False, **kwargs)
