"""Preset rule sets: HSI, HSTECH and two AI-chain designs.

Sources are the entries of docs/hang-seng-rules.md (sections 1 and 2); every UNVERIFIED number
is a default parameter that ``IndexRules.replace`` changes.
"""

from __future__ import annotations

from indexlab.rules.model import (
    CategoryCap,
    Eligibility,
    IndexRules,
    Selection,
    SelectionPhase,
    Sleeve,
    Universe,
    Weighting,
)

__all__ = ["AI_CHAIN", "AI_CHAIN_AH", "HSI", "HSTECH", "HSTECH_2026", "PRESETS"]

HSTECH_INDUSTRIES = (
    "Information Technology",
    "Consumer Discretionary",
    "Industrials",
    "Financials",
    "Healthcare",
)

HSTECH = IndexRules(
    name="HSTECH",
    description=(
        "Hang Seng TECH Index reproduction. Sources (hang-seng-rules.md 1.1-1.6): 30 largest "
        "HK-listed tech names [A]; HSICS industries IT, Consumer Discretionary, Industrials, "
        "Financials, Healthcare [B]; free-float market-cap weights with an 8% cap, applied at "
        "quarterly reviews only [A]; fast entry for IPOs ranking in the top 10 by first-day market"
        " cap, added after their 10th trading day [B]; calendar from the 2023-2025 reviews [A/B]. "
        "Assumptions: the innovation screen (internet platform, R&D >= 5% or revenue growth >= "
        "10%) is proxied by the universe's tech_theme flag (the judged tech_theme column as known "
        "at the cut-off, else ai_layer != none or industry IT); ranking by full market cap at the "
        "cut-off; buffer +/-20% (24th/36th), inferred from sibling indices; velocity 0.1% in 10 of"
        " 12 months and the latest 3 (UNVERIFIED); no listing-history requirement besides the "
        "velocity test (Haier Smart Home, whose H shares listed on 23 Dec 2020, entered at the "
        "31 Dec 2020 review 8 days later, and Horizon Robotics, listed 24 Oct 2024, at the 31 Dec "
        "2024 review 68 days later [B], hang-seng-rules.md 1.6, so HSI's 3 months cannot apply); "
        "WVR shares and depositary-held shares are excluded from the free float by the dataset's "
        "free_float_factor."
    ),
    universe=Universe(markets=("HK",), industries=HSTECH_INDUSTRIES, tech_theme=True),
    eligibility=Eligibility(min_listing_days=0),
    selection=Selection(n=30, key="mcap", buffer=0.2, fast_entry_top=10, fast_entry_days=10),
    weighting=Weighting(scheme="ff_mcap", cap=0.08),
)
"""Hang Seng TECH Index (see ``HSTECH.description`` for sources and assumptions)."""

#: The day the 50-name HSTECH takes effect (implemented after the close of 4 Dec 2026).
HSTECH_50_EFFECTIVE = "2026-12-07"

HSTECH_2026 = HSTECH.replace(
    name="HSTECH_2026",
    description=(
        "Hang Seng TECH Index across its December 2026 change (hang-seng-rules.md 1.8): 30 names "
        "by market cap for the reviews effective before 7 Dec 2026, then 50: 40 by market cap "
        "and 10 by trailing-12-month revenue growth among the remaining eligible names [B: the "
        "consultation's split; the final split was not found, so both numbers are parameters: "
        "selection.n and selection.extra[0].n]. Revenue growth is the dataset's point-in-time "
        "fundamental revenue_growth (Dataset.with_fundamentals): a universe name without it at "
        "a 50-name review is an error naming it, not a silent exclusion. The widening of the "
        "theme sub-categories from 16 to 24 is not modelled (the universe is the dataset's "
        "tech_theme). Otherwise as HSTECH."
    ),
    selection={
        "n": 40,
        "extra": (Sleeve("column:revenue_growth", n=10, missing="error"),),
        "earlier": (SelectionPhase(HSTECH_50_EFFECTIVE, (30, 0)),),
    },
)
"""HSTECH with its 30 -> 50 change of 7 Dec 2026 (see ``HSTECH_2026.description``)."""

HSI = IndexRules(
    name="HSI",
    description=(
        "Hang Seng Index reproduction. Sources (hang-seng-rules.md 2.1-2.3): 8% cap for all names "
        "since June 2021 [B]; count ultimately 100 (89 after Dec 2025) [A/B]; 20-25 Hong Kong "
        "companies [B] (quota on the hk_company column when present); 3-month listing history [B];"
        " same quarterly calendar as HSTECH [A/B]. Assumptions: a fixed target of 100 names ranked"
        " by full market cap (HSIL's industry-group coverage targets are not modelled); buffer "
        "+/-20% and velocity defaults as HSTECH (UNVERIFIED); fast entry top 10 (UNVERIFIED for "
        "HSI); no industry restriction."
    ),
    universe=Universe(markets=("HK",)),
    eligibility=Eligibility(),
    selection=Selection(
        n=100,
        key="mcap",
        buffer=0.2,
        fast_entry_top=10,
        quota_column="hk_company",
        quota_min=20,
        quota_max=25,
    ),
    weighting=Weighting(scheme="ff_mcap", cap=0.08),
)
"""Hang Seng Index (see ``HSI.description`` for sources and assumptions)."""

AI_LAYERS = ("compute", "infrastructure", "cloud", "model", "application")

AI_CHAIN = IndexRules(
    name="AI_CHAIN",
    description=(
        "HK-listed AI-chain index (project design, not an HSIL index). Universe: HK-listed names "
        "in the AI layers compute, infrastructure, cloud, model and application with ai_score >= "
        "0.1. Selection: top 30 by free-float market cap x ai_score (alpha 1) with a +/-20% "
        "buffer. Weighting: free-float market cap x ai_score, 8% cap; AI-application names capped "
        "at 5% (after CSI's HK AI indices, hang-seng-rules.md 3.2). Liquidity: the HSTECH velocity"
        " defaults plus a HK$20m 6-month average daily turnover floor (HKEX Tech 100 and HS Tech "
        "Select 50 use HK$20m, hang-seng-rules.md 3.1)."
    ),
    universe=Universe(markets=("HK",), ai_layers=AI_LAYERS, min_ai_score=0.1),
    eligibility=Eligibility(min_adt_hkd=20e6, adt_window_days=126),
    selection=Selection(n=30, key="ai_tilted", alpha=1.0, buffer=0.2, fast_entry_top=10),
    weighting=Weighting(
        scheme="tilted",
        alpha=1.0,
        cap=0.08,
        category_caps=(CategoryCap("ai_application", 0.05),),
    ),
)
"""HK-listed AI-chain index (see ``AI_CHAIN.description``)."""

AI_CHAIN_AH = AI_CHAIN.replace(
    name="AI_CHAIN_AH",
    description=(
        "AI_CHAIN plus Stock Connect A-shares (SH, SZ; connect_eligible only), 50 names, all "
        "values in HKD (the dataset's FX). Otherwise as AI_CHAIN."
    ),
    universe={"markets": ("HK", "SH", "SZ"), "connect_eligible_only": True},
    selection={"n": 50},
)
"""AI_CHAIN with Stock Connect A-shares (see ``AI_CHAIN_AH.description``)."""

#: Every preset by name: what the CLI, search configs and the API accept as a rule set's name.
PRESETS: dict[str, IndexRules] = {
    r.name: r for r in (HSI, HSTECH, HSTECH_2026, AI_CHAIN, AI_CHAIN_AH)
}
