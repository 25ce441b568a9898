"""Engraving verification benchmark: our pipeline against plain RapidOCR on the same photos.

``python -m bench.verify [--count 200] [--seed 0] [--split clean|hard|all] [--workers 1]
[--systems pipeline,baseline]``

What runs: the labelled photos of :mod:`bench.verify_set` (sample ``i`` of set ``--seed``),
each through

- ``pipeline``: ``hub.verification.verify(image, Expected(text=ordered, font, template))``;
- ``baseline``: RapidOCR 3 with its bundled default models on the whole photo; PASS when the
  read lines joined by one space equal the ordered text exactly, FAIL otherwise, REVIEW when
  nothing was read.

Latency is wall time around each call, engines warmed up first (their load is not counted).
It reports per system: false accepts by edit kind (negatives that got PASS), false rejects on
positives per split with REVIEW and FAIL apart, exact reads (the read text equals what is
really engraved), latency median/p95, and the issue's targets met or not. Texts are never
printed: progress and results name sample indices and counts only. The last stdout line is
the JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.verify_report import format_tables, machine, versions
from bench.verify_set import DIFFICULTIES, Sample, difficulty_of, sample_at
from bench.verify_texts import EDIT_KINDS
from drivers.laser.fonts import DECORATIVE_FONTS

DEFAULT_COUNT = 200  # both systems within 10 minutes on 2 busy cores (baseline 1-2.3 s/photo)
PROGRESS_EVERY = 20
SYSTEMS = ("pipeline", "baseline")
TARGETS = {"clean_false_reject": 0.02, "hard_false_reject": 0.15, "median_ms": 300.0}
FONT_STYLES = ("plain", "decorative")
VERDICTS = ("PASS", "FAIL", "REVIEW", "ERROR")

# A system judges one sample: (verdict, read text). ERROR is recorded when it raises.
System = Callable[[Sample], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One system's answer on one sample (the read text itself is not kept)."""

    verdict: str
    exact_read: bool  # read text == what is engraved
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class Record:
    """One sample's labels and every system's outcome."""

    index: int
    edit: str
    difficulty: str
    conditions: tuple[str, ...]
    outcomes: Mapping[str, Outcome]
    font_style: str = "plain"  # FONT_STYLES: "decorative" for script and blackletter fonts


def evaluate(sample: Sample, index: int, systems: Mapping[str, System]) -> Record:
    """Run every system on ``sample``, timing each call."""
    outcomes = {}
    for name, system in systems.items():
        started = time.perf_counter()
        try:
            verdict, read_text = system(sample)
        except Exception as err:  # a crash is a result to report, not a reason to stop
            print(f"verify: sample {index}: {name} raised {type(err).__name__}", file=sys.stderr)
            verdict, read_text = "ERROR", ""
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        outcomes[name] = Outcome(verdict, read_text == sample.engraved, elapsed_ms)
    return Record(
        index, sample.edit, sample.difficulty, sample.conditions, outcomes, font_style(sample.font)
    )


def font_style(font: str) -> str:
    """The font's style: "decorative" for the script and blackletter fonts (OCR misreads
    their capitals and near-twin glyphs), "plain" for the rest - they behave very differently."""
    return "decorative" if font in DECORATIVE_FONTS else "plain"


# --- systems ----------------------------------------------------------------------------------


def baseline_system() -> System:
    """Plain RapidOCR on the whole photo, exact comparison with the ordered text."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "warning"})

    def judge(sample: Sample) -> tuple[str, str]:
        result = engine(sample.image)
        texts = getattr(result, "txts", None) or ()  # None when nothing was detected
        lines = [str(text) for text in texts if str(text).strip()]
        if not lines:
            return "REVIEW", ""
        read = " ".join(lines)
        return ("PASS" if read == sample.ordered else "FAIL"), read

    return judge


def pipeline_system() -> System:
    """``hub.verification.verify`` with what the hub knows: ordered text, font, template."""
    from hub.verification import Expected, verify

    def judge(sample: Sample) -> tuple[str, str]:
        expected = Expected(text=sample.ordered, font=sample.font, template=sample.template)
        result = verify(sample.image, expected)
        return str(result.verdict.value), result.read_text

    return judge


_FACTORIES: dict[str, Callable[[], System]] = {
    "pipeline": pipeline_system,
    "baseline": baseline_system,
}


@cache
def _systems(names: tuple[str, ...]) -> dict[str, System]:
    """The named systems, built once per process and warmed up on one throwaway photo."""
    systems = {name: _FACTORIES[name]() for name in names}
    warmup = sample_at(10**6, seed=987_654)
    for system in systems.values():
        with contextlib.suppress(Exception):  # a crash shows per sample, as ERROR
            system(warmup)
    return systems


def _run_index(job: tuple[int, int, tuple[str, ...]]) -> Record:
    index, seed, names = job
    return evaluate(sample_at(index, seed), index, _systems(names))


# --- summary ----------------------------------------------------------------------------------


def summarize(records: Sequence[Record], systems: Sequence[str]) -> dict[str, Any]:
    """Per system: false accepts by edit, false rejects by split, exact reads, latency, targets."""
    return {name: _system_summary(records, name) for name in systems}


def _system_summary(records: Sequence[Record], name: str) -> dict[str, Any]:
    outcomes = [(record, record.outcomes[name]) for record in records if name in record.outcomes]
    false_accepts: dict[str, dict[str, Any]] = {
        edit: _false_accepts([o for r, o in outcomes if r.edit == edit]) for edit in EDIT_KINDS
    }
    false_rejects = {
        split: _false_rejects(
            [o for r, o in outcomes if r.edit == "none" and r.difficulty == split]
        )
        for split in DIFFICULTIES
    }
    latencies = np.array([o.elapsed_ms for _, o in outcomes], np.float64)
    median = float(np.median(latencies)) if latencies.size else None
    summary = {
        "samples": len(outcomes),
        "verdicts": {v: sum(o.verdict == v for _, o in outcomes) for v in VERDICTS},
        "false_accept": false_accepts,
        "false_accepts_total": sum(fa["accepted"] for fa in false_accepts.values()),
        "false_reject": false_rejects,
        "hard_false_reject_by_condition": _by_condition(outcomes),
        "false_reject_by_font_style": _by_font_style(outcomes),
        "exact_read_rate": {
            split: _rate(sum(o.exact_read for r, o in outcomes if r.difficulty == split),
                         sum(r.difficulty == split for r, _ in outcomes))
            for split in DIFFICULTIES
        },
        "latency_ms": {
            "median": _round(median),
            "p95": _round(float(np.percentile(latencies, 95)) if latencies.size else None),
            "mean": _round(float(latencies.mean()) if latencies.size else None),
        },
    }  # fmt: skip
    summary["targets"] = _targets(false_accepts, false_rejects, median)
    return summary


def _by_condition(outcomes: Sequence[tuple[Record, Outcome]]) -> dict[str, dict[str, int]]:
    """Hard positives rejected, per condition (a combined sample counts for each of its own)."""
    table: dict[str, dict[str, int]] = {}
    for record, outcome in outcomes:
        if record.edit != "none" or record.difficulty != "hard":
            continue
        for condition in record.conditions[1:]:
            row = table.setdefault(condition, {"positives": 0, "rejected": 0})
            row["positives"] += 1
            row["rejected"] += outcome.verdict != "PASS"
    return dict(sorted(table.items()))


def _by_font_style(outcomes: Sequence[tuple[Record, Outcome]]) -> dict[str, dict[str, Any]]:
    """False rejects per split and font style ("clean/plain", "clean/decorative", ...)."""
    return {
        f"{split}/{style}": _false_rejects(
            [
                o
                for r, o in outcomes
                if r.edit == "none" and r.difficulty == split and r.font_style == style
            ]
        )
        for split in DIFFICULTIES
        for style in FONT_STYLES
    }


def _false_accepts(outcomes: list[Outcome]) -> dict[str, Any]:
    accepted = sum(o.verdict == "PASS" for o in outcomes)
    rate = _rate(accepted, len(outcomes))
    return {"negatives": len(outcomes), "accepted": accepted, "rate": rate}


def _false_rejects(outcomes: list[Outcome]) -> dict[str, Any]:
    counts = {v.lower(): sum(o.verdict == v for o in outcomes) for v in ("REVIEW", "FAIL", "ERROR")}
    rejected = sum(counts.values())
    return {
        "positives": len(outcomes),
        **counts,
        "rate": _rate(rejected, len(outcomes)),
        "review_rate": _rate(counts["review"], len(outcomes)),
        "fail_rate": _rate(counts["fail"], len(outcomes)),
    }


def _targets(
    false_accepts: Mapping[str, Mapping[str, Any]],
    false_rejects: Mapping[str, Mapping[str, Any]],
    median_ms: float | None,
) -> dict[str, Any]:
    worst_fa = max((fa["accepted"] for fa in false_accepts.values()), default=0)
    clean, hard = false_rejects["clean"]["rate"], false_rejects["hard"]["rate"]
    return {
        "zero_false_accepts_every_edit": {"target": 0, "value": worst_fa, "met": worst_fa == 0},
        "clean_false_reject": _target(clean, TARGETS["clean_false_reject"]),
        "hard_false_reject": _target(hard, TARGETS["hard_false_reject"]),
        "median_latency_ms": _target(_round(median_ms), TARGETS["median_ms"]),
    }


def _target(value: float | None, limit: float) -> dict[str, Any]:
    return {"target": f"<= {limit}", "value": value, "met": value is not None and value <= limit}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- report -----------------------------------------------------------------------------------


def write_records(records: Iterable[Record], path: Path) -> None:
    """One JSON line per sample: labels and verdicts, never texts (``sample_at`` remakes them)."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            row = asdict(record)
            row["outcomes"] = {name: asdict(o) for name, o in record.outcomes.items()}
            out.write(json.dumps(row, sort_keys=True) + "\n")


# --- main -------------------------------------------------------------------------------------


def _indices(count: int, split: str) -> list[int]:
    wanted = (i for i in itertools.count() if split == "all" or difficulty_of(i) == split)
    return list(itertools.islice(wanted, count))


def _records(
    indices: Sequence[int], seed: int, names: tuple[str, ...], workers: int
) -> Iterator[Record]:
    jobs = [(index, seed, names) for index in indices]
    if workers <= 1:
        yield from map(_run_index, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_run_index, jobs)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("clean", "hard", "all"), default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument(
        "--records", type=Path, help="also write one JSON line per sample here (no texts)"
    )
    args = parser.parse_args(argv)
    args.system_names = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = [s for s in args.system_names if s not in SYSTEMS]
    if unknown or not args.system_names:
        parser.error(f"--systems: unknown {unknown}; known: {', '.join(SYSTEMS)}")
    if args.count < 1 or args.workers < 1:
        parser.error("--count and --workers must be at least 1")
    return args


def _collect(records: Iterable[Record], total: int) -> list[Record]:
    collected, started = [], time.monotonic()
    for record in records:
        collected.append(record)
        if len(collected) % PROGRESS_EVERY == 0 or len(collected) == total:
            elapsed = time.monotonic() - started
            print(f"verify: {len(collected)}/{total} samples, {elapsed:.0f} s", file=sys.stderr)
    return collected


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    indices = _indices(args.count, args.split)
    records = _collect(_records(indices, args.seed, args.system_names, args.workers), len(indices))
    summary = summarize(records, args.system_names)
    if args.records is not None:
        write_records(records, args.records)
    print(format_tables(summary))
    result = {
        "benchmark": "verify",
        "command": "python -m bench.verify " + " ".join(sys.argv[1:] if argv is None else argv),
        "set": {"count": len(indices), "seed": args.seed, "split": args.split},
        "workers": args.workers,
        "machine": machine(),
        "versions": versions(),
        "targets": {
            "false_accepts": "0 on every edit type",
            **{k: f"<= {v}" for k, v in TARGETS.items()},
        },
        "systems": summary,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
