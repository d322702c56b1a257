"""Shared test fixtures: a tiny hand-made market that every data test mutates one way, and the
hypothesis profile."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not flake); set
# INDEXLAB_HYPOTHESIS=explore to draw fresh random examples while developing.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("INDEXLAB_HYPOTHESIS", "repeatable"))


def tiny_securities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["0700.HK", "9988.HK", "688256.SH"],
            "name": ["Tencent", "Alibaba", "Cambricon"],
            "market": ["HK", "HK", "SH"],
            "currency": ["HKD", "HKD", "CNY"],
            "listing_date": ["2004-06-16", "2025-01-03", "2020-07-20"],
            "delisting_date": [None, None, "2025-01-06"],
            "industry": [
                "Information Technology",
                "Consumer Discretionary",
                "Information Technology",
            ],
            "listing_type": ["primary", "secondary", "primary"],
            "wvr": [False, True, False],
            "connect_eligible": [True, True, True],
            "ai_layer": ["application", "cloud", "compute"],
            "ai_score": [0.3, 0.5, 0.95],
        }
    )


def tiny_panel() -> pd.DataFrame:
    rows = [
        # date, id, close, total_return, shares, ff, turnover value, turnover shares
        ("2025-01-02", "0700.HK", 410.0, 410.0, 9.2e9, 0.7, 8.0e9, 2.0e7),
        ("2025-01-02", "688256.SH", 650.0, 650.0, 4.2e8, 0.5, 3.0e9, 4.6e6),
        ("2025-01-03", "0700.HK", 412.0, 412.0, 9.2e9, 0.7, 7.0e9, 1.7e7),
        ("2025-01-03", "9988.HK", 80.0, 80.0, 1.9e10, 0.9, 5.0e9, 6.2e7),
        ("2025-01-03", "688256.SH", 640.0, 640.0, 4.2e8, 0.5, 2.5e9, 3.9e6),
        ("2025-01-06", "0700.HK", 400.0, 401.0, 9.2e9, 0.7, 9.0e9, 2.2e7),
        ("2025-01-06", "9988.HK", None, None, 1.9e10, 0.9, None, None),
    ]
    cols = ["date", "id", "close", "total_return", "shares_outstanding", "free_float_factor"]
    return pd.DataFrame(rows, columns=[*cols, "turnover_value", "turnover_shares"])


def tiny_fx() -> pd.DataFrame:
    return pd.DataFrame({"date": ["2025-01-01"], "currency": ["CNY"], "to_hkd": [1.07]})


@pytest.fixture
def securities() -> pd.DataFrame:
    return tiny_securities()


@pytest.fixture
def panel() -> pd.DataFrame:
    return tiny_panel()


@pytest.fixture
def fx() -> pd.DataFrame:
    return tiny_fx()
