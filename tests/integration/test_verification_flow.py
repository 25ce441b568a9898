"""An engraving job on a simulated station, end to end over a real mosquitto: the station's
camera photographs what its laser burned, the photo travels to the hub in chunks, the hub reads
it in its OCR worker pool against the ordered text and finishes the job."""

from __future__ import annotations

import hashlib

import pytest
from support.floor import TERMINAL, Floor

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TEXT = "Anna & Ben 2026"


def test_an_engraving_job_ends_done_with_a_pass_on_the_stations_photo(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-01")
    floor.wait_online("st-01")

    job_id = floor.post_order("o-verify", TEXT)
    job = floor.wait_status(job_id, *TERMINAL, timeout=90)

    assert job["status"] == "done", job["history"][-1]
    assert [s["to_status"] for s in job["history"][-2:]] == ["verifying", "done"]
    assert job["history"][-1]["reason"] == "engraving verification PASS"
    photo = next(e for e in job["evidence"] if e["step"] == "engraving_photo")
    station_copy = floor.root / "stations" / "st-01" / "proofs" / f"{photo['sha256']}.png"
    image = station_copy.read_bytes()
    assert hashlib.sha256(image).hexdigest() == photo["sha256"]

    [verification] = floor.api.get(f"/jobs/{job_id}/verification").json()
    assert verification["verdict"] == "PASS"
    assert verification["read_text"] == TEXT
    assert verification["proof_sha256"] == photo["sha256"]
    hub_copy = floor.api.get(f"/proofs/{photo['sha256']}")
    assert hub_copy.status_code == 200
    assert hub_copy.content == image  # the hub holds exactly the station's photo
