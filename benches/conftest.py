"""Bench plumbing: every bench case times indexlab and its peer baseline in the same run.

Each bench sets ``benchmark.group`` to the case and ``benchmark.extra_info["role"]`` to
``"indexlab"`` or ``"baseline"``; the summary below prints the baseline/indexlab ratio per case.
"""

from __future__ import annotations

from typing import Any


def _median(bench: Any) -> float | None:
    stats = getattr(bench, "stats", None)
    stats = getattr(stats, "stats", stats)
    return getattr(stats, "median", None)


def pytest_terminal_summary(terminalreporter: Any, config: Any) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    cases: dict[str, dict[str, Any]] = {}
    for bench in session.benchmarks:
        role = bench.extra_info.get("role")
        if role:
            cases.setdefault(bench.group or bench.name, {})[role] = bench
    terminalreporter.section("indexlab vs baselines (medians, same run)")
    for case, pair in sorted(cases.items()):
        ours, theirs = _median(pair.get("indexlab")), _median(pair.get("baseline"))
        if ours is None or theirs is None:
            continue
        label = pair["baseline"].extra_info.get("baseline", "baseline")
        notes = pair["indexlab"].extra_info.get("note", "")
        terminalreporter.write_line(
            f"{case:<40} indexlab {ours * 1e6:12.1f} us   {label:<24} {theirs * 1e6:12.1f} us"
            f"   ratio {theirs / ours:8.1f}x  {notes}"
        )
