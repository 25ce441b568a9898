"""Reporting for :mod:`bench.verify`: markdown tables, machine and version facts."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from bench.verify_set import DIFFICULTIES
from bench.verify_texts import EDIT_KINDS


def format_tables(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown tables: false accepts by edit, then the headline numbers, one column a system."""
    names = list(summary)
    head = "| " + " | ".join(["", *names]) + " |\n|" + "---|" * (len(names) + 1) + "\n"
    rows = ["**False accepts** (PASS on a wrong engraving: accepted / negatives)"]
    rows.append(head.rstrip("\n"))
    for edit in EDIT_KINDS:
        cells = [
            _fraction(summary[n]["false_accept"][edit], "accepted", "negatives") for n in names
        ]
        rows.append(f"| {edit} | " + " | ".join(cells) + " |")
    rows += ["", head.rstrip("\n")]
    for split in DIFFICULTIES:
        cells = [_reject_cell(summary[n]["false_reject"][split]) for n in names]
        rows.append(f"| false reject, {split} (REVIEW + FAIL) | " + " | ".join(cells) + " |")
    for split in DIFFICULTIES:
        cells = [_percent(summary[n]["exact_read_rate"][split]) for n in names]
        rows.append(f"| exact read, {split} | " + " | ".join(cells) + " |")
    for stat in ("median", "p95"):
        cells = [f"{summary[n]['latency_ms'][stat]} ms" for n in names]
        rows.append(f"| latency {stat} | " + " | ".join(cells) + " |")
    cells = [_targets_cell(summary[n]["targets"]) for n in names]
    rows.append("| targets met | " + " | ".join(cells) + " |")
    rows += ["", "**Hard positives rejected, by condition** (rejected / positives)"]
    rows.append(head.rstrip("\n"))
    conditions = sorted({c for n in names for c in summary[n]["hard_false_reject_by_condition"]})
    for condition in conditions:
        cells = [_condition_cell(summary[n], condition) for n in names]
        rows.append(f"| {condition} | " + " | ".join(cells) + " |")
    rows += [
        "",
        "**False rejects, by font style** (decorative: scripts, scriptc, cursive, gothiceng)",
    ]
    rows.append(head.rstrip("\n"))
    for group in summary[names[0]]["false_reject_by_font_style"]:
        cells = [_reject_cell(summary[n]["false_reject_by_font_style"][group]) for n in names]
        rows.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _condition_cell(system: Mapping[str, Any], condition: str) -> str:
    row = system["hard_false_reject_by_condition"].get(condition)
    return "-" if row is None else _fraction(row, "rejected", "positives")


def _fraction(entry: Mapping[str, Any], part: str, whole: str) -> str:
    return f"{entry[part]} / {entry[whole]}"


def _reject_cell(entry: Mapping[str, Any]) -> str:
    errors = f" + {entry['error']} error" if entry["error"] else ""
    rate = _percent(entry["rate"])
    return f"{rate} ({entry['review']} + {entry['fail']}{errors} of {entry['positives']})"


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f} %"


def _targets_cell(targets: Mapping[str, Mapping[str, Any]]) -> str:
    met = [name for name, target in targets.items() if target["met"]]
    return f"{len(met)} / {len(targets)}"


def machine() -> dict[str, Any]:
    """CPU count and model name (from /proc/cpuinfo where it exists)."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                model,
            )
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def versions() -> dict[str, str]:
    """Versions of what the numbers depend on."""
    packages = ("rapidocr", "onnxruntime", "opencv-python-headless", "numpy", "pillow")
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
