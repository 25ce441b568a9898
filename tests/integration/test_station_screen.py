"""The station screen in Debian's chromium (Playwright), against a real agent subprocess with
sim devices, a real hub and a private mosquitto (tests/support/floor.py).

A technician signs in with badge + PIN on the keypad and works a job through the screen:
acknowledge, Ready per step, frame, the two-press fire confirmation, sign-off; the hub's
verdict (PASS, or FAIL with the per-character diff) shows on the screen. Screenshots of each
stage go to test-artifacts/screenshots/station-*.png (docs/img/ copies them).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.browser import SCREENSHOTS as SHOTS
from support.floor import SCREEN_BADGE, SCREEN_PIN, TERMINAL, Floor, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

playwright_sync = pytest.importorskip("playwright.sync_api")
TEXT = "Anna & Ben 2026"
STEP_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.set_default_timeout(STEP_TIMEOUT_MS)
    yield page
    context.close()
    assert not errors, f"script errors on the screen: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"station-{name}.png"))


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.locator("#badge").fill(SCREEN_BADGE)
    for digit in SCREEN_PIN:  # the keypad, as a gloved finger would
        page.locator(f".keypad .key[data-key='{digit}']").click()
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who").get_by_text(SCREEN_BADGE).wait_for()


def post_order(floor: Floor, external_id: str, text: str = TEXT, *, pack: bool = False) -> str:
    line: dict[str, Any] = {
        "piece": {
            "sku": "RING-14K-6",
            "serial": f"SN-{external_id}",
            "metal": "gold",
            "declared_value": {"amount": 950},
        },
        "engraving": {"text": text, "template": "ring_band"},
    }
    if pack:
        line["packaging"] = {"box": "ring-box-velvet"}
    response = floor.api.post("/orders", json={"external_id": external_id, "lines": [line]})
    assert response.status_code == 201, response.text
    return str(response.json()["jobs"][0]["job_id"])


def work_the_job(page: Any, floor: Floor, job_id: str, *, shots: bool) -> None:
    """Answer what the station asks for (Ready, frame + fire, Sign off) until the job ends."""
    page.locator("#act-ack").click()
    framed = False
    deadline = time.monotonic() + 90
    for round_ in itertools.count():
        assert time.monotonic() < deadline, "the job did not finish through the screen"
        if floor.job(job_id)["status"] in TERMINAL or page.locator("#outcome").count():
            return
        state = page.locator("body").get_attribute("data-state")
        if state == "ready":
            if shots and round_ < 3:
                shot(page, "evidence" if page.locator(".evidence img").count() else "ready")
            page.locator("#act-ready").click()
        elif state == "frame_and_confirm":
            if not framed:
                page.locator("#act-frame").click()
                page.locator("#act-frame:not([disabled])").wait_for()
                framed = True
                if shots:
                    page.locator("#preview").wait_for()
                    shot(page, "preview")
            fire(page, shots=shots)
            if shots:
                page.locator("#progress-text").wait_for()
                shot(page, "engraving")
        elif state == "signoff":
            if shots:
                shot(page, "signoff")
            page.locator("#act-signoff").click()
        page.wait_for_timeout(200)


def fire(page: Any, *, shots: bool) -> None:
    page.locator("#act-fire").click()
    dialog = page.locator("#fire-dialog")
    dialog.wait_for(state="visible")
    if shots:
        shot(page, "fire-confirm")
    page.locator("#fire-go").click()
    dialog.wait_for(state="hidden")


def test_a_whole_job_through_the_screen(floor: Floor, page: Any) -> None:
    floor.start_hub()
    floor.start_agent("st-01", screen=True, seconds_per_char=0.15)
    floor.wait_online("st-01")
    url = floor.screen_url("st-01")
    page.goto(url)
    page.locator("#badge").wait_for()
    shot(page, "signin")
    sign_in(page, url)

    job_id = post_order(floor, "o-screen-1", pack=True)
    page.locator("#act-ack").wait_for()
    assert page.locator(".queue li").count() >= 1
    shot(page, "queue")
    work_the_job(page, floor, job_id, shots=True)

    job = floor.wait_status(job_id, *TERMINAL, timeout=60)
    assert job["status"] == "done", job["history"][-3:]
    page.locator("#verdict").wait_for()
    assert page.locator("#verdict").inner_text() == "PASS"
    shot(page, "done")
    signoffs = [e for e in job["evidence"] if e["kind"] == "signoff"]
    assert signoffs
    assert {e["by"] for e in signoffs} == {SCREEN_BADGE}


def test_b_the_laser_does_not_fire_without_the_second_press(floor: Floor, page: Any) -> None:
    floor.start_hub()
    floor.start_agent("st-01", screen=True)
    floor.wait_online("st-01")
    sign_in(page, floor.screen_url("st-01"))
    job_id = post_order(floor, "o-screen-gate")
    page.locator("#act-ack").click()
    while page.locator("body").get_attribute("data-state") != "frame_and_confirm":
        page.locator("#act-ready").click()
        page.wait_for_timeout(300)

    page.locator("#act-fire").click()  # the first press only opens the confirmation
    dialog = page.locator("#fire-dialog")
    dialog.wait_for(state="visible")
    assert page.locator("#fire-text").inner_text() == TEXT
    assert "SN-o-screen-gate" in page.locator("#fire-piece").inner_text()
    page.keyboard.press("Enter")  # focus starts on Cancel: Enter does not fire
    dialog.wait_for(state="hidden")
    page.wait_for_timeout(1500)
    assert page.locator("body").get_attribute("data-state") == "frame_and_confirm"
    job = floor.job(job_id)
    assert not [e for e in job["evidence"] if e["kind"] == "gcode"], "the laser engraved"
    assert job["status"] == "running"  # the start gate passed; the laser still waits

    fire(page, shots=False)  # now the deliberate second press
    wait_until(
        lambda: [e for e in floor.job(job_id)["evidence"] if e["kind"] == "gcode"],
        timeout=30,
        what="the engraving's G-code evidence after the confirmation",
    )


def test_c_a_wrong_engraving_shows_fail_with_the_diff(
    floor: Floor, page: Any, tmp_path: Path
) -> None:
    decoy = tmp_path / "decoy-burn.png"
    burn_text("Anna & Ben 2025", decoy)  # what the camera will see: one digit off
    floor.start_hub()
    floor.start_agent("st-01", screen=True, camera_scene=decoy)
    floor.wait_online("st-01")
    sign_in(page, floor.screen_url("st-01"))
    job_id = post_order(floor, "o-screen-fail")
    work_the_job(page, floor, job_id, shots=False)

    page.locator("#verdict").wait_for()
    assert page.locator("#verdict").inner_text() == "FAIL"
    assert page.locator("#diff-expected").inner_text().replace("·", "").startswith("Anna & Ben")
    bad = page.locator("#diff-expected span.bad")
    assert "6" in bad.all_inner_texts()
    assert "5" in page.locator("#diff-read span.bad").all_inner_texts()
    shot(page, "fail")


def test_d_the_screen_works_while_the_hub_is_down(floor: Floor, page: Any) -> None:
    floor.start_hub()
    floor.start_agent("st-01", screen=True)
    floor.wait_online("st-01")
    url = floor.screen_url("st-01")
    job_id = post_order(floor, "o-screen-offline")
    page.goto(url)
    page.locator("#badge").wait_for()

    assert floor.hub is not None
    floor.hub.stop(timeout=10)
    banner = page.locator("#banners").get_by_text("Hub unreachable")
    banner.wait_for()
    assert page.locator("#hub").inner_text() == "hub unreachable"
    sign_in(page, url)  # sign-in works offline (the technicians file is on the station)
    page.locator(f".queue li[data-job='{job_id}']").wait_for()
    page.locator("#act-ack").click()
    shot(page, "hub-down")

    floor.start_hub()
    banner.wait_for(state="detached", timeout=30_000)
    assert page.locator("#hub").inner_text() == "hub online"
    floor.wait_status(job_id, "acknowledged", "running", timeout=30)  # the ack synced


def burn_text(text: str, path: Path) -> None:
    """A ring band with ``text`` burned as the sim laser would, saved where a sim camera can
    photograph it (the PNG carries the burn's settings for the camera's engraving frame)."""
    from drivers.laser.burn import BurnCanvas
    from drivers.laser.templates import load_templates
    from drivers.laser.toolpath import render_text

    item = load_templates()["ring_band"]
    canvas = BurnCanvas(item, metal="gold", seed=1)
    for stroke in render_text(text, template=item).strokes:
        for start, end in itertools.pairwise(stroke):
            canvas.burn_segment(*start, *end, power_fraction=0.8)
    canvas.save(path)
