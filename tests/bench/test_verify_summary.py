"""bench.verify's bookkeeping, on 3 real samples judged by a STAND-IN system.

The stand-in is not an OCR engine: it "reads" the engraved text (or nothing) from the sample's
labels, so the summary's counting can be checked exactly. The real engines run in the benchmark
itself (``python -m bench.verify``), which is too slow for the test suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import verify
from bench.verify_set import Sample, sample_at


def _labels_reader(sample: Sample) -> tuple[str, str]:
    """Stand-in: PASS when the engraving is right, FAIL otherwise, REVIEW on hard positives."""
    if sample.edit == "none" and sample.difficulty == "hard":
        return "REVIEW", ""
    return ("PASS" if sample.engraved == sample.ordered else "FAIL"), sample.engraved


def _accept_all(sample: Sample) -> tuple[str, str]:
    """Stand-in for a blind engine: PASS on everything, reading the ordered text."""
    return "PASS", sample.ordered


def _crash(sample: Sample) -> tuple[str, str]:
    raise RuntimeError("engine died")


@pytest.fixture(scope="module")
def records() -> list[verify.Record]:
    systems = {"labels": _labels_reader, "blind": _accept_all, "crash": _crash}
    # 0: clean substitution, 1: hard deletion, 2: clean positive, 3: hard positive
    return [verify.evaluate(sample_at(i, seed=1), i, systems) for i in range(4)]


def test_counts_false_accepts_by_edit(records: list[verify.Record]) -> None:
    summary = verify.summarize(records, ["labels", "blind", "crash"])
    assert summary["labels"]["false_accepts_total"] == 0
    assert summary["blind"]["false_accept"]["substitution"] == {
        "negatives": 1,
        "accepted": 1,
        "rate": 1.0,
    }
    assert summary["blind"]["false_accept"]["deletion"]["accepted"] == 1
    assert summary["blind"]["targets"]["zero_false_accepts_every_edit"]["met"] is False
    assert summary["labels"]["targets"]["zero_false_accepts_every_edit"]["met"] is True


def test_splits_false_rejects_into_review_fail_and_error(records: list[verify.Record]) -> None:
    summary = verify.summarize(records, ["labels", "crash"])
    hard = summary["labels"]["false_reject"]["hard"]
    assert (hard["positives"], hard["review"], hard["fail"], hard["rate"]) == (1, 1, 0, 1.0)
    assert summary["labels"]["false_reject"]["clean"]["rate"] == 0.0
    assert summary["labels"]["exact_read_rate"] == {"clean": 1.0, "hard": 0.5}
    crashed = summary["crash"]["false_reject"]["clean"]
    assert (crashed["error"], crashed["rate"]) == (1, 1.0)
    assert summary["crash"]["verdicts"]["ERROR"] == 4


def test_tables_and_json_are_printable(records: list[verify.Record]) -> None:
    summary = verify.summarize(records, ["labels", "blind"])
    table = verify.format_tables(summary)
    assert "| substitution | 0 / 1 | 1 / 1 |" in table
    assert "| false reject, hard (REVIEW + FAIL) | 100.0 % (1 + 0 of 1) |" in table
    assert json.loads(json.dumps(summary))["blind"]["samples"] == 4
    assert summary["blind"]["latency_ms"]["median"] is not None


def test_records_file_has_labels_and_verdicts_but_no_text(
    records: list[verify.Record], tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    verify.write_records(records, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    assert rows[0]["outcomes"]["blind"]["verdict"] == "PASS"
    texts = {sample_at(i, seed=1).ordered for i in range(4)}
    assert not any(text in path.read_text() for text in texts)


def test_false_rejects_by_font_style_add_up(records: list[verify.Record]) -> None:
    summary = verify.summarize(records, ["labels"])["labels"]
    by_style = summary["false_reject_by_font_style"]
    for split in ("clean", "hard"):
        groups = [by_style[f"{split}/{style}"] for style in verify.FONT_STYLES]
        assert sum(g["positives"] for g in groups) == summary["false_reject"][split]["positives"]
    hard_positive = sample_at(3, seed=1)
    style = verify.font_style(hard_positive.font)
    assert by_style[f"hard/{style}"]["review"] == 1  # the stand-in REVIEWs hard positives
    assert verify.font_style("gothiceng") == "decorative"
    assert verify.font_style("futural") == "plain"
