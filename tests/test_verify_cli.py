"""The `benchfleet verify` contract, through the installed command in a subprocess: --json
prints exactly one JSON object with the verdict, read text and diff; exit codes say the verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PHOTO = Path(__file__).parent / "fixtures" / "proofs" / "anna_ben_2026_ring_band.png"


def benchfleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchfleet", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_json_output_is_one_object_with_the_verdict_and_the_exit_code_follows_it() -> None:
    passed = benchfleet(
        str(PHOTO), "--text", "Anna & Ben 2026", "--template", "ring_band", "--json"
    )
    assert passed.returncode == 0, passed.stderr
    result = json.loads(passed.stdout)  # the whole of stdout is one JSON document
    assert isinstance(result, dict)
    assert (result["verdict"], result["read_text"], result["diff"]) == (
        "PASS",
        "Anna & Ben 2026",
        [],
    )

    failed = benchfleet(
        str(PHOTO), "--text", "Anna & Ben 2027", "--template", "ring_band", "--json"
    )
    assert failed.returncode == 1, failed.stderr
    result = json.loads(failed.stdout)
    assert result["verdict"] == "FAIL"  # 2027 ordered, 2026 engraved
    changes = [(d["op"], d["expected"], d["read"]) for d in result["diff"] if d["op"] != "equal"]
    assert changes == [("substitute", "7", "6")]

    # Letter O ordered, digit 0 engraved: near twins in this font (14 against 16 units wide).
    # OCR reads "0", but the reading fits the ink less than 0.01 better: not definite.
    unsure = benchfleet(
        str(PHOTO), "--text", "Anna & Ben 2O26", "--template", "ring_band", "--json"
    )
    assert unsure.returncode == 3, unsure.stderr
    assert json.loads(unsure.stdout)["verdict"] == "REVIEW"


def test_an_unreadable_image_exits_4_with_a_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "photo.png"
    bogus.write_bytes(b"not a png")
    result = benchfleet(str(bogus), "--text", "Anna", "--json")
    assert result.returncode == 4
    assert result.stdout == ""
    assert "cannot verify" in result.stderr
    assert "not a decodable PNG or JPEG" in result.stderr


def test_help_documents_the_exit_codes() -> None:
    result = benchfleet("--help")
    assert result.returncode == 0
    assert "0 PASS, 1 FAIL, 3 REVIEW, 4" in " ".join(result.stdout.split())
