"""The fault suite with real parts (tests/support/fault_scenarios.py, also behind
``python -m bench.faults``): each scenario breaks one thing for real and ends with the ledger and
the job store consistent; its measured numbers are printed (``-s``)."""

from __future__ import annotations

import pytest
from support.fault_parts import Unsupported
from support.fault_scenarios import SCENARIOS
from support.floor import Floor

pytestmark = [pytest.mark.fault, pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario(floor: Floor, name: str) -> None:
    try:
        result = SCENARIOS[name](floor)
    except Unsupported as why:
        pytest.skip(f"{name}: {why}")
    print(f"\n{result.summary()}")
    assert result.lost == 0
    assert result.stored + result.pending == result.sent > 0
