"""A whole job with an engraving text and a gift message, on a real floor (mosquitto, hub and
agent as processes): neither text appears in any log the floor wrote - the hub's and the
agent's stdout/stderr and the broker's log file - while the logs do speak of the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.floor import TERMINAL, Floor

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TEXT = "Zoe & Max 2026"
GIFT = "Forever yours, from the lighthouse keeper"


def order(external_id: str) -> dict[str, object]:
    line = {
        "piece": {
            "sku": "RING-14K-6",
            "serial": f"SN-{external_id}",
            "metal": "gold",
            "declared_value": {"amount": 950},
        },
        "engraving": {"text": TEXT, "template": "ring_band"},
        "packaging": {"box": "ring-box-velvet", "gift_message": GIFT},
    }
    return {"external_id": external_id, "lines": [line]}


def floor_logs(floor: Floor) -> dict[Path, str]:
    paths = [*sorted((floor.root / "logs").glob("*.log")), floor.broker.log_path]
    return {path: path.read_text(errors="replace") for path in paths if path.exists()}


def test_a_whole_job_never_writes_the_text_or_gift_message_to_a_log(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-01", extra_toml="auto_signoff = true\n")  # the pack step's sign-off
    floor.wait_online("st-01")
    created = floor.api.post("/orders", json=order("o-private"))
    assert created.status_code == 201, created.text
    job_id = created.json()["jobs"][0]["job_id"]

    job = floor.wait_status(job_id, *TERMINAL, timeout=120)
    assert job["status"] == "done", job["history"][-1]
    assert any(e["step"] == "pack" for e in job["evidence"])  # the gift message was handled
    floor.stop_all()  # flush and close every log

    logs = floor_logs(floor)
    assert len(logs) >= 3  # hub, agent, broker
    everything = "\n".join(logs.values())
    assert "o-private" in everything or job_id in everything  # the logs do cover this job
    assert "expiry failed" not in everything  # the hub's expiry pass ran with its sweeper
    for path, text in logs.items():
        for value in (TEXT, GIFT, "Zoe &amp; Max", "lighthouse keeper"):
            assert value not in text, f"{value!r} in {path.name}"
