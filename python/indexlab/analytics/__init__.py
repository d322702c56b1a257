"""What an index product team ships: factsheets, change announcements, trade lists, capacity
and performance attribution, for any index (rebuilt by rules, designed, optimised or searched).

* :func:`factsheet`: period and calendar-year returns against HSTECH and HSI, risk, top 10,
  breakdowns, market caps and turnover (:func:`indexlab.report.factsheet.html` draws it).
* :func:`announcement` / :func:`change_table`: the notice of each review.
* :func:`trade_list`: shares and HKD per name at an AUM, share of ADV, days to trade, costs.
* :func:`capacity`: the AUM at which a rebalance needs more than N days, and who binds.
* :func:`attribution`: Brinson–Fachler by name, industry, AI layer and market, Carino-linked.

docs/index-products.md describes the conventions.

Examples
--------
>>> import indexlab
>>> from indexlab import analytics
>>> ds = indexlab.datasets.synthetic(n_securities=60, years=2, seed=7)
>>> hist = indexlab.build_index(ds, indexlab.rules.HSTECH.replace(n=15))
>>> cap = analytics.capacity(ds, hist, participation=0.2, max_days=1)
>>> bool(cap.aum_hkd > 0)
True
"""

from indexlab.analytics.announcements import Announcement, announcement, change_table
from indexlab.analytics.attribution import Attribution, attribution, brinson_fachler, carino
from indexlab.analytics.factsheet import Factsheet, factsheet, period_returns
from indexlab.analytics.liquidity import (
    LIQUIDITY_WINDOW,
    Capacity,
    TradeList,
    adv_hkd,
    capacity,
    holdings_capacity,
    trade_list,
)

__all__ = [
    "LIQUIDITY_WINDOW",
    "Announcement",
    "Attribution",
    "Capacity",
    "Factsheet",
    "TradeList",
    "adv_hkd",
    "announcement",
    "attribution",
    "brinson_fachler",
    "capacity",
    "carino",
    "change_table",
    "factsheet",
    "holdings_capacity",
    "period_returns",
    "trade_list",
]
