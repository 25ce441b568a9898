"""``benchfleet verify``: read one photo against the ordered text, as the hub would.

Exit codes (documented in ``--help``): 0 PASS, 1 FAIL, 3 REVIEW, 4 the image or the text could
not be used; 2 stays click's "bad command line".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.verification import VerificationResult

EXIT_CODES = {"PASS": 0, "FAIL": 1, "REVIEW": 3}
EXIT_UNUSABLE = 4
VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "REVIEW": "bold yellow"}


def run_verify(
    image: Path, *, text: str, font: str | None, template: str | None, as_json: bool
) -> int:
    """Verify ``image``; print the result (one JSON object with ``as_json``); the exit code."""
    from hub.verification import BadImageError, Expected, LayoutError, verify

    font = font or _template_font(template)
    try:
        data = image.read_bytes()
        result = verify(data, Expected(text, font, template))
    except (OSError, BadImageError, LayoutError) as err:
        print(f"benchfleet verify: cannot verify {image}: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    if as_json:
        print(result.model_dump_json())
    else:
        print_summary(result)
    return EXIT_CODES[str(result.verdict)]


def _template_font(template: str | None) -> str | None:
    """The template's first offered font (what the hub assumes for an order without one)."""
    from hub.catalogue import catalogue

    item = catalogue().templates.get(template or "")
    return item.fonts[0] if item and item.fonts else None


def print_summary(result: VerificationResult) -> None:
    """A readable account: verdict, texts, the differing positions, why."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    verdict = str(result.verdict)
    console.print(f"[{VERDICT_STYLE[verdict]}]{verdict}[/]  confidence {result.confidence:.2f}")
    console.print(f"expected: {result.expected_text!r}")
    console.print(f"read:     {result.read_text!r}")
    changes = [item for item in result.diff if item.op != "equal"]
    if changes:
        table = Table("position", "difference", "expected", "read")
        for item in changes:
            table.add_row(str(item.position), item.op, repr(item.expected), repr(item.read))
        console.print(table)
    if result.reasons:
        console.print("why: " + ", ".join(result.reasons))
    console.print(f"[dim]{result.engine}, {result.elapsed_ms:.0f} ms[/]")
