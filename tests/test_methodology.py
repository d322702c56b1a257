"""`IndexRules.methodology`: the rule set in prose, as Markdown, HTML and from the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from indexlab import report, rules
from indexlab.cli import main
from indexlab.errors import DataError
from indexlab.rules.methodology import PRESETS, SECTIONS, buffer_ranks, methodology, next_reviews

AS_OF = "2026-01-01"


def section(md: str, title: str) -> str:
    """The text of one ``## title`` section."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, flags=re.S | re.M)
    assert m is not None, f"no section {title!r}"
    return m.group(1)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_has_every_section(name: str) -> None:
    preset = PRESETS[name]
    md = methodology(preset, as_of=AS_OF)
    lines = md.splitlines()
    assert lines[0] == f"# {name} index methodology"
    assert lines[1] == "" and len(lines[2]) > 100  # the one-paragraph summary
    headings = [ln[3:] for ln in lines if ln.startswith("## ")]
    assert headings == list(SECTIONS)
    assert preset.description in section(md, "Assumptions and sources")
    assert "COVERAGE" not in md and "10 trading days past its last observation" in md
    page = methodology(preset, "html", as_of=AS_OF)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    # The method delegates to the module.
    assert preset.methodology() == methodology(preset)


def test_numbers_follow_replace() -> None:
    md = rules.HSTECH.replace(n=40, cap=0.1).methodology()
    sel, wt = section(md, "Selection"), section(md, "Weighting and caps")
    assert "target of 40 constituents" in sel
    assert "newcomers need rank <= 32; incumbents stay while rank <= 48" in sel
    assert "at most 10% of the index" in wt and "8%" not in wt
    # The preset's own description is quoted, with the changed fields named above it.
    src = section(md, "Assumptions and sources")
    assert "`selection.n`: 30 -> 40" in src and "`weighting.cap`: 0.08 -> 0.1" in src

    variant = rules.AI_CHAIN.replace(
        **{
            "eligibility.min_adt_hkd": 5e7,
            "eligibility.adt_window_days": 60,
            "eligibility.velocity_threshold": 0.002,
            "eligibility.velocity_required": 9,
            "eligibility.max_suspension_days": 20,
            "eligibility.min_listing_days": 120,
            "calendar.cutoff_months": (6, 12),
            "selection.fast_entry_top": 0,
            "weighting.category_caps": [{"category": "ai_application", "cap": 0.03}],
        }
    )
    md = variant.methodology()
    el = section(md, "Eligibility screens")
    assert "over the 60 trading days up to the cut-off of at least HK$50m" in el
    assert "at least 0.2%" in el and "at least 9 of the latest 12 months" in el
    assert "more than 20 trading days" in el and "at least 120 calendar days" in el
    assert "at most 3%" in section(md, "Weighting and caps")
    assert "Fast entry: none" in section(md, "Selection")
    cal = section(md, "Review calendar")
    assert "semi-annually" in cal and "June and December" in cal


def test_hstech_buffer_ranks_are_24_and_36() -> None:
    assert buffer_ranks(rules.HSTECH.selection.n, rules.HSTECH.selection.buffer) == (24, 36)
    md = rules.HSTECH.methodology()
    assert "newcomers need rank <= 24; incumbents stay while rank <= 36" in section(md, "Selection")
    assert "ranks 24 and 36" in section(md, "Assumptions and sources")


def test_buffer_ranks_round_as_the_engine() -> None:
    # Rust's f64::round: halves away from zero (25 * 1.1 = 27.500000000000004 anyway).
    assert buffer_ranks(5, 0.5) == (3, 8)  # 2.5 -> 3, 7.5 -> 8
    assert buffer_ranks(2, 0.5) == (1, 3)
    assert buffer_ranks(1, 0.9) == (1, 2)  # lower never below 1
    assert buffer_ranks(30, 0.0) == (30, 30)


def test_composite_sleeves_and_quotas() -> None:
    r = rules.HSTECH.replace(
        selection={
            "n": 40,
            "extra": [{"key": "column:revenue_growth", "n": 10}],
            "max_per_industry": 12,
        }
    )
    sel = section(r.methodology(), "Selection")
    assert "target of 50 constituents" in sel and "2 blocks" in sel
    assert "Block 1 (40 names): Buffer zone of 20% around 40: newcomers need rank <= 32" in sel
    assert "Block 2 (10 names): Buffer zone of 20% around 10: newcomers need rank <= 8" in sel
    assert "`revenue_growth`" in sel and "at most 12 constituents per industry" in sel
    hsi = section(rules.HSI.methodology(), "Selection")
    assert "at least 20 and at most 25 constituents flagged by the data field `hk_company`" in hsi


def test_assumptions_cite_the_rules_file() -> None:
    md = rules.HSTECH.methodology()
    src = section(md, "Assumptions and sources")
    for ref in ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "5.5"):
        assert f"docs/hang-seng-rules.md {ref}" in src
    assert "UNVERIFIED" in src and "INFERENCE" in src
    assert "0.1% a month" in src
    # Every document it cites is one a reader of this repository has.
    root = Path(__file__).resolve().parents[1]
    cited = set(re.findall(r"[\w./-]+\.md\b", md))
    assert "docs/hang-seng-rules.md" in cited
    for doc in cited:
        name = Path(doc).name
        hits = [p for top in ("docs", "python") for p in (root / top).rglob(name)]
        hits = [p for p in hits if p.as_posix().endswith(doc)]
        assert hits, f"the methodology cites {doc}, which is not in the repository"


def test_universe_explains_the_tech_theme() -> None:
    uni = section(rules.HSTECH.methodology(), "Universe")
    assert "`tech_theme`" in uni and "internet, fintech, cloud, e-commerce and digital" in uni
    assert "casinos" in uni and "Information Technology" in uni
    ai = section(rules.AI_CHAIN_AH.methodology(), "Universe")
    assert "compute, infrastructure, cloud, model and application" in ai
    assert "`ai_score` >= 0.1" in ai and "Stock Connect eligible" in ai


def test_next_four_reviews_follow_the_calendar() -> None:
    cal = next_reviews(rules.HSTECH, as_of=AS_OF)
    assert len(cal) == 4
    assert [str(d.date()) for d in cal["implementation"]] == [
        "2026-03-06",
        "2026-06-05",
        "2026-09-04",
        "2026-12-04",
    ]
    assert [str(d.date()) for d in cal["effective"]] == [
        "2026-03-09",
        "2026-06-08",
        "2026-09-07",
        "2026-12-07",
    ]
    md = methodology(rules.HSTECH, as_of=AS_OF)
    text = section(md, "Review calendar")
    assert "| Wed 31 Dec 2025 | Fri 06 Mar 2026 | Mon 09 Mar 2026 |" in text
    assert "first Friday of the month 3 months after" in text
    # A Monday implementation, 2 months after annual cut-offs.
    other = rules.HSTECH.replace(
        calendar={"cutoff_months": (12,), "months_to_implementation": 2, "weekday": 0}
    )
    cal = next_reviews(other, as_of=AS_OF)
    assert [str(d.date()) for d in cal["implementation"]] == [
        "2026-02-02",
        "2027-02-01",
        "2028-02-07",
        "2029-02-05",
    ]
    assert "first Monday" in other.methodology()


def test_html_is_self_contained(tmp_path: Path) -> None:
    for preset in PRESETS.values():
        page = report.methodology_html(preset, as_of=AS_OF)
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
        low = page.lower()
        assert "http" not in low and "<script" not in low
        assert (
            "<link" not in low and "src=" not in low and "@import" not in low and "url(" not in low
        )
        assert "<code>tech_theme</code>" in page or preset.universe.tech_theme is False
    page = methodology(rules.HSTECH, "html", as_of=AS_OF)
    assert "newcomers need rank &lt;= 24; incumbents stay while rank &lt;= 36" in page


def test_writing_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "hstech.html"
    page = report.methodology_html(rules.HSTECH, out, as_of=AS_OF)
    assert out.read_text(encoding="utf-8") == page
    out.write_text("keep me", encoding="utf-8")
    with pytest.raises(DataError, match="exists"):
        report.methodology_html(rules.HSTECH, out)
    assert out.read_text(encoding="utf-8") == "keep me"
    report.methodology_html(rules.HSTECH.replace(n=40), out, overwrite=True)
    assert "target of 40 constituents" in out.read_text(encoding="utf-8")


def test_bad_arguments_raise() -> None:
    with pytest.raises(DataError, match="format"):
        methodology(rules.HSTECH, "pdf")
    with pytest.raises(DataError, match="IndexRules"):
        methodology("HSTECH")  # type: ignore[arg-type]


def test_cli_prints_markdown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["methodology", "HSTECH", "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert out == methodology(rules.HSTECH, as_of=AS_OF)

    toml = tmp_path / "variant.toml"
    toml.write_text(rules.HSTECH.replace(n=40, cap=0.1).to_toml(), encoding="utf-8")
    html = tmp_path / "variant.html"
    assert main(["methodology", str(toml), "--html", str(html)]) == 0
    cap = capsys.readouterr()
    assert "target of 40 constituents" in cap.out and "at most 10% of the index" in cap.out
    assert "written to" in cap.err and "at most 10% of the index" in html.read_text()

    # An existing file is kept unless --overwrite, and nothing is printed then.
    assert main(["methodology", "hsi", "--html", str(html)]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "--overwrite" in cap.err and len(cap.err.strip().splitlines()) == 1
    assert main(["methodology", "hsi", "--html", str(html), "--overwrite"]) == 0
    assert "<h1>HSI index methodology</h1>" in html.read_text()


def test_cli_unknown_preset_is_one_clean_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["methodology", "NOPE"]) != 0
    cap = capsys.readouterr()
    assert cap.out == ""
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and "unknown preset" in err[0] and "HSTECH" in err[0]
    bad = tmp_path / "bad.toml"
    bad.write_text("[selection\nn = ", encoding="utf-8")
    assert main(["methodology", str(bad)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read rules" in err[0]
    bad.write_text("[selection]\nn = 0\n", encoding="utf-8")
    assert main(["methodology", str(bad)]) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
