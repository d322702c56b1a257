"""The data layer: construction, alignment, point-in-time views, persistence, and one test per
kind of bad input (each must raise a DataError that names the column, security or date)."""

from __future__ import annotations

from pathlib import Path

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import DataError, Dataset


def build(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> Dataset:
    return Dataset.from_frames(securities, panel, fx=fx)


def test_alignment(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    ds = build(securities, panel, fx)
    assert list(ds.ids) == ["0700.HK", "9988.HK", "688256.SH"]
    assert [str(d) for d in ds.dates] == ["2025-01-02", "2025-01-03", "2025-01-06"]
    close = ds.field("close")
    assert close[0, 0] == 410.0 and np.isnan(close[0, 1]) and close[1, 2] == 640.0
    assert np.isnan(close[2, 1])  # suspended: a row with NaN values
    assert not close.flags.writeable


def test_market_cap_in_hkd(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    ds = build(securities, panel, fx)
    mcap = ds.market_cap()
    assert mcap[1, 2] == pytest.approx(640.0 * 4.2e8 * 0.5 * 1.07)
    assert mcap[1, 0] == pytest.approx(412.0 * 9.2e9 * 0.7)


def test_point_in_time_view(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    ds = build(securities, panel, fx)
    view = ds.until("2025-01-02")
    assert len(view.dates) == 1
    assert list(view.ids) == ["0700.HK", "688256.SH"]  # Alibaba lists on 2025-01-03
    # The 2025-01-06 delisting of 688256 is in the future at this date: hidden.
    assert view.securities["delisting_date"].isna().all()
    assert ds.until("2025-01-05").field("close").shape == (2, 3)  # a weekend resolves backwards
    with pytest.raises(DataError, match="before the first panel date"):
        ds.until("2024-12-31")


def test_snapshot(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    snap = build(securities, panel, fx).snapshot()
    assert list(snap["id"]) == ["0700.HK", "9988.HK"]  # 688256 delisted on the last date
    alibaba = snap.set_index("id").loc["9988.HK"]
    assert alibaba["close"] == 80.0  # suspended on the last day: last traded close
    assert str(pd.Timestamp(alibaba["last_trade"]).date()) == "2025-01-03"


def test_save_load_round_trip(
    tmp_path: Path, securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    ds = build(securities, panel, fx)
    back = indexlab.load(ds.save(tmp_path / "ds"))
    assert list(back.ids) == list(ds.ids)
    np.testing.assert_array_equal(back.dates, ds.dates)
    for name, arr in ds.fields.items():
        np.testing.assert_array_equal(back.field(name), arr)
    pd.testing.assert_frame_equal(back.fx, ds.fx)


def test_load_csv_folder(
    tmp_path: Path, securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    securities.to_csv(tmp_path / "securities.csv", index=False)
    panel.to_csv(tmp_path / "panel.csv", index=False)
    fx.to_csv(tmp_path / "fx.csv", index=False)
    ds = indexlab.load(tmp_path)
    np.testing.assert_array_equal(ds.field("close"), build(securities, panel, fx).field("close"))


def test_polars_frames(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    ds = Dataset.from_frames(
        pl.from_pandas(securities), pl.from_pandas(panel), fx=pl.from_pandas(fx)
    )
    np.testing.assert_array_equal(ds.field("close"), build(securities, panel, fx).field("close"))


# ------------------------------------------------------------------------- bad input, one by one


def test_missing_required_column(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    with pytest.raises(
        DataError, match=r"panel is missing required column\(s\) \['free_float_factor'\]"
    ):
        build(securities, panel.drop(columns="free_float_factor"), fx)
    with pytest.raises(
        DataError, match=r"securities is missing required column\(s\) \['ai_layer'\]"
    ):
        build(securities.drop(columns="ai_layer"), panel, fx)


def test_duplicate_date_id(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    doubled = pd.concat([panel.iloc[:3], panel.iloc[[2]], panel.iloc[3:]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate rows for \(2025-01-03, '0700.HK'\)"):
        build(securities, doubled, fx)


def test_unsorted_dates(securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame) -> None:
    shuffled = panel.iloc[[2, 0, 1, 3, 4, 5, 6]].reset_index(drop=True)
    with pytest.raises(DataError, match=r"not sorted: row 1 \(2025-01-02\)"):
        build(securities, shuffled, fx)


def test_duplicate_dates_in_arrays(securities: pd.DataFrame) -> None:
    dates = ["2025-01-02", "2025-01-02"]
    fields = {f: np.full((2, 3), np.nan) for f in indexlab.data.PANEL_FIELDS}
    with pytest.raises(DataError, match="duplicate date 2025-01-02"):
        Dataset.from_arrays(securities, dates, fields)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("close", 0.0, "prices must be > 0"),
        ("close", -3.0, "prices must be > 0"),
        ("total_return", -1.0, "total-return values must be > 0"),
        ("shares_outstanding", 0.0, "share counts must be > 0"),
        ("free_float_factor", 1.2, r"free-float factor must be in \(0, 1\]"),
        ("free_float_factor", 0.0, r"free-float factor must be in \(0, 1\]"),
        ("turnover_value", -1.0, "is negative"),
    ],
)
def test_bad_panel_values(
    securities: pd.DataFrame,
    panel: pd.DataFrame,
    fx: pd.DataFrame,
    column: str,
    value: float,
    message: str,
) -> None:
    panel.loc[2, column] = value
    with pytest.raises(DataError, match=message) as e:
        build(securities, panel, fx)
    assert "'0700.HK' on 2025-01-03" in str(e.value) and column in str(e.value)


@pytest.mark.parametrize("score", [1.5, -0.1, None])
def test_ai_score_outside_unit_interval(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame, score: float | None
) -> None:
    securities.loc[1, "ai_score"] = score
    with pytest.raises(DataError, match=r"'ai_score': security '9988.HK'.*\[0, 1\]"):
        build(securities, panel, fx)


@pytest.mark.parametrize(
    ("column", "value"),
    [("market", "NYSE"), ("currency", "EUR"), ("ai_layer", "robots"), ("listing_type", "dual")],
)
def test_unknown_categories(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame, column: str, value: str
) -> None:
    securities.loc[0, column] = value
    with pytest.raises(
        DataError, match=rf"'{column}': security '0700.HK' has unknown value '{value}'"
    ):
        build(securities, panel, fx)


def test_duplicate_security_ids(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    securities.loc[1, "id"] = "0700.HK"
    with pytest.raises(DataError, match="duplicate id '0700.HK'"):
        build(securities, panel, fx)


def test_panel_id_not_in_master(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    panel.loc[4, "id"] = "1810.HK"
    with pytest.raises(
        DataError, match=r"id '1810.HK' \(on 2025-01-03\) that is not in the securities master"
    ):
        build(securities, panel, fx)


def test_row_before_listing(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    securities.loc[0, "listing_date"] = "2025-01-03"
    with pytest.raises(
        DataError, match="'0700.HK' on 2025-01-02, before its listing date 2025-01-03"
    ):
        build(securities, panel, fx)


def test_row_after_delisting(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    securities.loc[0, "delisting_date"] = "2025-01-03"
    with pytest.raises(
        DataError, match="'0700.HK' on 2025-01-06, after its delisting date 2025-01-03"
    ):
        build(securities, panel, fx)


def test_missing_fx(securities: pd.DataFrame, panel: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no CNY->HKD rate"):
        Dataset.from_frames(securities, panel)
    late = pd.DataFrame({"date": ["2025-01-03"], "currency": ["CNY"], "to_hkd": [1.07]})
    with pytest.raises(DataError, match="no CNY->HKD rate on or before 2025-01-02"):
        Dataset.from_frames(securities, panel, fx=late)


def test_misaligned_array_shapes(securities: pd.DataFrame) -> None:
    fields = {f: np.full((2, 3), np.nan) for f in indexlab.data.PANEL_FIELDS}
    fields["close"] = np.full((2, 2), np.nan)
    with pytest.raises(
        DataError, match=r"'close' has shape \(2, 2\), expected \(dates, securities\) = \(2, 3\)"
    ):
        Dataset.from_arrays(securities, ["2025-01-02", "2025-01-03"], fields)


def test_not_a_frame() -> None:
    with pytest.raises(DataError, match="must be a pandas or polars DataFrame"):
        Dataset.from_frames([1, 2], [3])


def test_benchmark_levels_stop_at_their_last_value(
    securities: pd.DataFrame, panel: pd.DataFrame, fx: pd.DataFrame
) -> None:
    bench = pd.DataFrame(
        {"date": ["2025-01-02", "2025-01-03"], "index": "HSI", "level": [19623.3, 19760.3]}
    )
    ds = Dataset.from_frames(securities, panel, fx=fx, benchmarks=bench)
    hsi = ds.benchmarks["HSI"].to_numpy()
    assert hsi[1] == 19760.3 and np.isnan(hsi[2])  # unknown after the last level, not flat
    assert ds.fx["CNY"].notna().all()  # an FX rate is the last known fix: it does carry


def test_fundamentals_are_point_in_time_validated_and_saved(tmp_path) -> None:
    ds = indexlab.datasets.synthetic(n_securities=10, years=1, seed=1)
    a, b = ds.ids[0], ds.ids[1]
    table = pd.DataFrame(
        {
            "id": [a, a, b],
            "known_from": [ds.dates[5], ds.dates[20], ds.dates[30]],
            "revenue_growth": [0.1, -0.05, 0.3],
        }
    )
    g = ds.with_fundamentals(table)
    values = g.fundamental("revenue_growth", [4, 5, 19, 20, 30])
    assert values[:, 0].tolist()[1:] == [0.1, 0.1, -0.05, -0.05] and np.isnan(values[0, 0])
    assert np.isnan(values[:4, 1]).all() and values[4, 1] == 0.3
    # The point-in-time view drops figures published later.
    assert len(g.until(ds.dates[10]).fundamentals) == 1
    # Saved and loaded with the dataset.
    back = indexlab.load(g.save(tmp_path / "ds"))
    pd.testing.assert_frame_equal(back.fundamentals, g.fundamentals)
    with pytest.raises(indexlab.DataError, match="no fundamental 'margin'"):
        g.fundamental("margin", [1])
    with pytest.raises(indexlab.DataError, match="not in the securities master"):
        ds.with_fundamentals(table.assign(id=["ZZZ.HK"] * 3))
    with pytest.raises(indexlab.DataError, match="known_from"):
        ds.with_fundamentals(table.assign(known_from=["soon"] * 3))
    with pytest.raises(indexlab.DataError, match=f"revenue_growth.*{b}"):
        ds.with_fundamentals(table.assign(revenue_growth=[0.1, 0.2, "high"]))
    with pytest.raises(indexlab.DataError, match="two rows"):
        ds.with_fundamentals(pd.concat([table, table.iloc[:1]]))
