"""Order intake refuses what cannot be done with a 422 naming the field, before any work."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

BASE_LINE: dict[str, Any] = {
    "line_id": "1",
    "piece": {
        "sku": "RING-14K-6",
        "serial": "SN-1",
        "metal": "gold",
        "stones": [{"type": "diamond", "treatment": "none"}],
        "declared_value": {"amount": 900},
    },
    "engraving": {"text": "Anna & Ben", "template": "ring_band", "font": "futural"},
}


def order(**changes: Any) -> dict[str, Any]:
    line = copy.deepcopy(BASE_LINE)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = line
        for key in path:
            target = target[key]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return {"external_id": "shop-1", "lines": [line]}


REFUSALS = [
    ({"engraving__text": "x" * 25}, ["engraving", "text"], "too_long"),
    ({"engraving__text": "Zoë & Jürgen"}, ["engraving", "text"], "unrenderable_glyph"),
    ({"engraving__text": "Anna ❤ Ben"}, ["engraving", "text"], "unrenderable_glyph"),
    ({"engraving__font": "gothiceng"}, ["engraving", "font"], "unknown_font"),
    # refused by the laser's own layout check, which intake runs too
    ({"engraving__text": " Anna & Ben"}, ["engraving", "text"], "edge_space"),
    ({"engraving__template": "watch_caseback"}, ["engraving", "template"], "unknown_template"),
    ({"engraving__position": "outside"}, ["engraving", "position"], "unknown_position"),
    ({"piece__sku": "RING-99"}, ["piece", "sku"], "unknown_sku"),
    (
        {
            "piece__stones": [{"type": "emerald", "treatment": "oiling"}],
            "cleaning": {"method": "ultrasonic"},
        },
        ["cleaning", "method"],
        "contraindicated",
    ),
    (
        {
            "piece__stones": [{"type": "amethyst", "treatment": "none"}],
            "cleaning": {"method": "steam"},
        },
        ["cleaning", "method"],
        "contraindicated",
    ),
    (
        {
            "piece__stones": [{"type": "diamond", "treatment": "fracture_filling"}],
            "cleaning": {"method": "ultrasonic"},
        },
        ["cleaning", "method"],
        "contraindicated",
    ),
    (  # unknown treatment: no ultrasonic
        {"piece__stones": [{"type": "sapphire"}], "cleaning": {"method": "ultrasonic"}},
        ["cleaning", "method"],
        "contraindicated",
    ),
    (  # a stone the table does not know: no steam
        {
            "piece__stones": [{"type": "unobtainium", "treatment": "none"}],
            "cleaning": {"method": "steam"},
        },
        ["cleaning", "method"],
        "contraindicated",
    ),
    ({"packaging": {"box": "shoe-box"}}, ["packaging", "box"], "unknown_packaging"),
]


@pytest.mark.parametrize(("changes", "field", "kind"), REFUSALS)
@pytest.mark.asyncio
async def test_refusal_names_the_field(
    api: httpx.AsyncClient, changes: dict[str, Any], field: list[str], kind: str
) -> None:
    response = await api.post("/orders", json=order(**changes))
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert [p["type"] for p in problems] == [kind], problems
    assert problems[0]["loc"] == ["body", "lines", 0, *field]
    assert problems[0]["msg"]
    assert "Anna" not in str(problems)  # never echo the text
    assert "Jürgen" not in str(problems)
    assert (await api.get("/jobs")).json() == []  # nothing was stored


@pytest.mark.asyncio
async def test_glyph_refusal_names_the_characters(api: httpx.AsyncClient) -> None:
    response = await api.post("/orders", json=order(engraving__text="Zoë"))
    assert "U+00EB" in response.json()["detail"][0]["msg"]


@pytest.mark.asyncio
async def test_due_date_in_the_past_and_duplicate_lines(api: httpx.AsyncClient) -> None:
    body = order()
    body["due_at"] = "2001-01-01T00:00:00Z"
    body["lines"].append(copy.deepcopy(BASE_LINE))
    problems = (await api.post("/orders", json=body)).json()["detail"]
    assert {(tuple(p["loc"]), p["type"]) for p in problems} == {
        (("body", "due_at"), "due_in_past"),
        (("body", "lines", 1, "line_id"), "duplicate_line"),
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"cleaning": {"method": "hand"}, "piece__stones": [{"type": "opal"}]},
        {"cleaning": {"method": "ultrasonic"}},  # diamond, no treatment
        {"cleaning": {"method": "steam"}, "piece__stones": [{"type": "ruby", "treatment": "heat"}]},
        {"engraving": None, "piece__sku": "EAR-STUD-PT"},
        {"engraving__text": "~ A+B 1987 ~", "engraving__font": "scripts"},
    ],
)
@pytest.mark.asyncio
async def test_possible_orders_are_accepted(
    api: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    response = await api.post("/orders", json=order(**changes))
    assert response.status_code == 201, response.text


@pytest.mark.asyncio
async def test_full_vas_order_plans_every_step(api: httpx.AsyncClient) -> None:
    body = order(
        cleaning={"method": "ultrasonic"},
        certificate={"kind": "lab_report", "number": "GIA 2141438167"},
        packaging={"box": "ring-box-velvet", "insert": "velvet", "gift_message": "For Marie"},
    )
    body["rush"] = True
    created = (await api.post("/orders", json=body)).json()
    assert created["rush"] is True
    job = (await api.get(f"/jobs/{created['jobs'][0]['job_id']}")).json()
    steps = [(s["name"], s["kind"], s["evidence"], s["signoff_required"]) for s in job["steps"]]
    assert steps == [
        ("inspect_in_photo", "photo", ["photo"], False),
        ("engrave", "engrave", ["gcode"], False),
        ("engraving_photo", "photo", ["photo"], False),
        ("clean", "clean", [], False),
        ("certificate_match", "scan", ["scan"], False),
        ("pack", "manual", ["photo"], True),
        ("inspect_out_photo", "photo", ["photo"], False),
    ]
    assert [s["irreversible"] for s in job["steps"]][1:4] == [True, False, True]
    assert "For Marie" not in str(job)  # step params (the gift message) are not exposed


def test_hub_templates_match_what_the_laser_lays_out() -> None:
    """Intake and the station laser must agree on every template, or orders pass intake and
    block at the bench."""
    from drivers.laser.templates import load_templates
    from hub.catalogue import catalogue

    laser = load_templates()
    for template_id, template in catalogue().templates.items():
        assert template_id in laser, template_id
        assert template.max_chars == laser[template_id].max_chars, template_id
        assert set(template.fonts) <= set(laser[template_id].fonts), template_id
