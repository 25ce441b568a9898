"""Refuse what cannot be done, before any work starts: each problem names its field.

The answers follow FastAPI's 422 shape (``loc``, ``msg``, ``type``) so integrators parse one
format for shape errors and for catalogue errors alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.laser.fonts import Font, UnknownFontError, load_font
from drivers.laser.templates import ItemTemplate, load_templates
from drivers.laser.toolpath import TextNotEngravable, check_engravable
from hub.catalogue import Catalogue, catalogue, cleaning_refusal
from hub.order_request import OrderLine, OrderRequest

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an order is refused."""

    loc: Loc
    msg: str
    type: str

    def as_detail(self) -> dict[str, Any]:
        return {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}


def check_order(order: OrderRequest, *, now: datetime) -> list[Problem]:
    """Every reason ``order`` cannot be done (empty when it can)."""
    problems: list[Problem] = []
    if order.due_at is not None and order.due_at <= now:
        problems.append(Problem(("due_at",), "due date is in the past", "due_in_past"))
    seen: set[str] = set()
    for index, line in enumerate(order.lines):
        if line.line_id in seen:
            msg = f"line_id {line.line_id!r} is used twice"
            problems.append(Problem(("lines", index, "line_id"), msg, "duplicate_line"))
        seen.add(line.line_id)
        problems += check_line(line, ("lines", index), catalogue())
    return problems


def check_line(line: OrderLine, at: Loc, cat: Catalogue) -> list[Problem]:
    """The problems of one order line."""
    sku = line.piece.sku
    if sku not in cat.skus:
        return [Problem((*at, "piece", "sku"), f"unknown SKU {sku!r}", "unknown_sku")]
    problems = _check_engraving(line, at, cat)
    if line.cleaning is not None:
        stones = [(stone.type, stone.treatment) for stone in line.piece.stones]
        refusal = cleaning_refusal(line.cleaning.method, stones)
        if refusal is not None:
            index, reason = refusal
            msg = f"{reason} (piece.stones[{index}]); hand cleaning is allowed"
            problems.append(Problem((*at, "cleaning", "method"), msg, "contraindicated"))
    if line.packaging is not None:
        if line.packaging.box not in cat.boxes:
            msg = f"unknown box {line.packaging.box!r}"
            problems.append(Problem((*at, "packaging", "box"), msg, "unknown_packaging"))
        insert = line.packaging.insert
        if insert is not None and insert not in cat.inserts:
            msg = f"unknown insert {insert!r}"
            problems.append(Problem((*at, "packaging", "insert"), msg, "unknown_packaging"))
    return problems


def _check_engraving(line: OrderLine, at: Loc, cat: Catalogue) -> list[Problem]:
    engraving = line.engraving
    if engraving is None:
        return []
    where = (*at, "engraving")
    template = cat.templates.get(engraving.template)
    if template is None or engraving.template not in cat.skus[line.piece.sku]:
        offered = ", ".join(cat.skus[line.piece.sku]) or "none: not engravable"
        msg = f"unknown template {engraving.template!r} for SKU {line.piece.sku} ({offered})"
        return [Problem((*where, "template"), msg, "unknown_template")]
    problems: list[Problem] = []
    font = _font(engraving.font)
    if engraving.font not in template.fonts or font is None:
        offered = ", ".join(template.fonts)
        msg = f"font {engraving.font!r} is not offered for {template.id} ({offered})"
        problems.append(Problem((*where, "font"), msg, "unknown_font"))
    elif missing := [c for c in dict.fromkeys(engraving.text) if not font.can_render(c)]:
        shown = " ".join(f"U+{ord(char):04X}" for char in missing[:10])
        msg = f"font {engraving.font} has no glyph for {shown}: it would engrave a truncated text"
        problems.append(Problem((*where, "text"), msg, "unrenderable_glyph"))
    if len(engraving.text) > template.max_chars:
        msg = f"{len(engraving.text)} characters, template {template.id} takes {template.max_chars}"
        problems.append(Problem((*where, "text"), msg, "too_long"))
    if engraving.position is not None and engraving.position not in template.positions:
        msg = f"position {engraving.position!r} not in {', '.join(template.positions)}"
        problems.append(Problem((*where, "position"), msg, "unknown_position"))
    if not problems:
        problems += _laser_refusal(engraving.text, engraving.font, template.id, where)
    return problems


def _laser_refusal(text: str, font: str, template_id: str, where: Loc) -> list[Problem]:
    """The station laser's own layout check (edge spaces, look-alike glyphs, text too small
    to fit): whatever the laser would refuse at the bench is refused here, before any work."""
    laser_template = _laser_templates().get(template_id)
    if laser_template is None:
        msg = f"template {template_id!r} has no laser layout (firmware_configs/templates)"
        return [Problem((*where, "template"), msg, "unknown_template")]
    try:
        check_engravable(text, font, laser_template)
    except TextNotEngravable as refusal:
        at = "" if refusal.position is None else f" (position {refusal.position})"
        return [Problem((*where, "text"), f"{refusal.reason}{at}", refusal.kind)]
    return []


def _font(name: str) -> Font | None:
    """The laser's own font (the same glyph table the station renders with), or None."""
    try:
        return load_font(name)
    except UnknownFontError:
        return None


@functools.cache
def _laser_templates() -> dict[str, ItemTemplate]:
    return load_templates()
