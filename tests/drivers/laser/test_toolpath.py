"""Text to toolpath to G-code: fonts, templates, fitting, refusals, and the program's hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drivers.laser.fonts import (
    ENGRAVING_FONTS,
    PRINTABLE_ASCII,
    UnknownFontError,
    available_fonts,
    identical_glyphs,
    load_font,
)
from drivers.laser.gcode import MAX_LINE_CHARS, format_number, frame_gcode, to_gcode
from drivers.laser.templates import ItemTemplate, TemplateError, load_templates, parse_templates
from drivers.laser.toolpath import (
    REFUSAL_KINDS,
    TextNotEngravable,
    check_engravable,
    render_text,
)

TEMPLATES = load_templates()
EPS = 1e-9
GOOD_TEMPLATE = {
    "item_width_mm": 20.0,
    "item_height_mm": 6.0,
    "area_width_mm": 18.0,
    "area_height_mm": 4.0,
    "max_chars": 10,
}


@st.composite
def engravable(draw: st.DrawFn) -> tuple[str, str, ItemTemplate]:
    """(text, font, template) that must engrave: printable, renderable, within the limit."""
    template = draw(st.sampled_from(sorted(TEMPLATES.values(), key=lambda t: t.name)))
    font = draw(st.sampled_from(template.fonts))
    alphabet = sorted(c for c in PRINTABLE_ASCII if load_font(font).can_render(c))
    text = draw(st.text(alphabet=alphabet, min_size=1, max_size=template.max_chars))
    assume(text.strip(" ") == text)
    return text, font, template


def program_hash(text: str, font: str, template: ItemTemplate) -> str:
    return to_gcode(
        render_text(text, font=font, template=template), power_s=800, feed_mm_min=600
    ).sha256


# --- fonts ---------------------------------------------------------------------------------


def test_fonts_offer_only_latin_sets() -> None:
    assert available_fonts() == ENGRAVING_FONTS
    assert "futural" in ENGRAVING_FONTS
    assert not {"greek", "greekc", "cyrillic", "japanese", "timesg"} & set(ENGRAVING_FONTS)
    with pytest.raises(UnknownFontError, match="greekc"):
        load_font("greekc")


@pytest.mark.parametrize("name", ENGRAVING_FONTS)
def test_every_font_draws_letters_and_digits(name: str) -> None:
    font = load_font(name)
    alnum = [c for c in PRINTABLE_ASCII if c.isalnum()]
    assert all(font.can_render(c) for c in alnum)
    assert font.can_render(" ")
    assert not font.glyphs[" "].strokes
    assert not font.can_render("é")
    assert not font.can_render("\t")


def test_substituted_glyphs_are_refused() -> None:
    assert not load_font("futuram").can_render("{")  # drawn as an angle bracket
    assert not load_font("rowmans").can_render("^")  # drawn as an up arrow
    assert load_font("futural").can_render("^")


def test_identical_glyphs_are_known() -> None:
    """Fonts drawing "I" and "l" alike: the hash cannot tell them apart, verification must."""
    twins = {name: identical_glyphs(name) for name in ENGRAVING_FONTS}
    assert twins["futural"] == {frozenset("Il")}
    assert twins["timesr"] == frozenset()
    assert program_hash("Ilona", "futural", TEMPLATES["ring_band"]) == program_hash(
        "llona", "futural", TEMPLATES["ring_band"]
    )


# --- templates -----------------------------------------------------------------------------


def test_shipped_templates_load() -> None:
    assert set(TEMPLATES) >= {"ring_band", "pendant_disc", "bar_pendant", "watch_caseback"}
    ring = TEMPLATES["ring_band"]
    assert (ring.area_width_mm, ring.area_height_mm, ring.max_chars) == (40.0, 2.5, 24)
    assert ring.surface == "ring_band"
    assert TEMPLATES["pendant_disc"].outline == "disc"
    assert TEMPLATES["pendant_disc"].max_chars == 12
    assert TEMPLATES["watch_caseback"].max_chars == 30


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_chars": 0}, "max_chars"),
        ({"area_width_mm": -1}, "area_width_mm"),
        ({"area_width_mm": 25.0}, "area_width_mm"),  # larger than the item
        ({"margin_mm": 2.0}, "margin_mm"),
        ({"fonts": ["greekc"]}, "fonts"),
        ({"fonts": []}, "fonts"),
        ({"colour": "red"}, "colour"),  # unknown keys are typos, not extensions
        ({"outline": "disc"}, "item_height_mm"),  # a disc needs width == height
    ],
)
def test_bad_template_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(TemplateError, match=rf"'bad'.*{field}"):
        parse_templates({"template": {"bad": GOOD_TEMPLATE | change}})


def test_disc_area_must_fit_inside_the_circle() -> None:
    disc = {"outline": "disc", "item_height_mm": 20.0, "area_height_mm": 12.0}
    with pytest.raises(TemplateError, match="corners leave the disc"):
        parse_templates({"template": {"bad": GOOD_TEMPLATE | disc}})


def test_template_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[template.ring\n")
    with pytest.raises(TemplateError, match="not valid TOML"):
        load_templates(broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("version = 1\n")
    with pytest.raises(TemplateError, match=r"no \[template"):
        load_templates(empty)


# --- fitting and refusals ------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(engravable())
def test_any_printable_text_renders_whole_inside_the_area(
    case: tuple[str, str, ItemTemplate],
) -> None:
    text, font, template = case
    toolpath = render_text(text, font=font, template=template)
    assert len(toolpath.glyphs) == len(text) - text.count(" ")
    assert [g.char for g in toolpath.glyphs] == [c for c in text if c != " "]
    margin = template.margin_mm
    for stroke in toolpath.strokes:
        for x, y in stroke:
            assert margin - EPS <= x <= template.area_width_mm - margin + EPS
            assert margin - EPS <= y <= template.area_height_mm - margin + EPS
    assert toolpath.bbox.x0 + toolpath.bbox.x1 == pytest.approx(template.area_width_mm)
    # As large as it can be: either the width or the line box's height is used up.
    loaded = load_font(font)
    line_height = toolpath.char_height_mm * loaded.line_height / loaded.cap_height
    assert toolpath.bbox.width == pytest.approx(
        template.area_width_mm - 2 * margin
    ) or line_height == pytest.approx(template.area_height_mm - 2 * margin)
    assert len(toolpath.word_gaps) == len([w for w in text.split(" ") if w]) - 1


@settings(max_examples=100, deadline=None)
@given(engravable(), st.data())
def test_gcode_is_short_lined_deterministic_and_changes_with_any_character(
    case: tuple[str, str, ItemTemplate], data: st.DataObject
) -> None:
    text, font, template = case
    program = to_gcode(
        render_text(text, font=font, template=template), power_s=800, feed_mm_min=600
    )
    assert all(len(line) <= MAX_LINE_CHARS for line in program.lines)
    assert program.sha256 == program_hash(text, font, template)
    position = data.draw(st.integers(0, len(text) - 1))
    other = data.draw(st.sampled_from(sorted(PRINTABLE_ASCII - {text[position]})))
    changed = text[:position] + other + text[position + 1 :]
    assume(changed.strip(" ") == changed and load_font(font).can_render(other))
    assume(not any({text[position], other} <= twins for twins in identical_glyphs(font)))
    assert program_hash(changed, font, template) != program.sha256


@settings(max_examples=100, deadline=None)
@given(engravable(), st.data())
def test_non_ascii_is_refused_with_its_position(
    case: tuple[str, str, ItemTemplate], data: st.DataObject
) -> None:
    text, font, template = case
    text = text[: template.max_chars - 1]
    position = data.draw(st.integers(0, len(text)))
    char = data.draw(st.characters(min_codepoint=0x80, codec="utf-8"))
    bad = text[:position] + char + text[position:]
    for attempt in (
        lambda: render_text(bad, font=font, template=template),
        lambda: check_engravable(bad, font, template),
    ):
        with pytest.raises(TextNotEngravable) as refused:
            attempt()
        assert (refused.value.position, refused.value.char) == (position, char)


@given(st.sampled_from(sorted(TEMPLATES)), st.integers(1, 10))
def test_over_the_limit_is_refused(name: str, extra: int) -> None:
    template = TEMPLATES[name]
    with pytest.raises(TextNotEngravable, match="over the") as refused:
        check_engravable("A" * (template.max_chars + extra), template.default_font, template)
    assert (refused.value.kind, refused.value.position) == ("too_long", template.max_chars)


@pytest.mark.parametrize(
    ("text", "font", "kind", "reason", "position"),
    [
        ("Renée", "futural", "no_glyph", "printable ASCII", 3),
        ("Ann\nLee", "futural", "no_glyph", "printable ASCII", 3),
        ("", "futural", "blank", "empty", None),
        ("   ", "futural", "blank", "empty", None),
        (" Ann", "futural", "edge_space", "leading or trailing", 0),
        ("Ann ", "futural", "edge_space", "leading or trailing", 3),
        ("Ann", "rowmand", "font", "not allowed", None),
        ("Ann", "gothiceng", "font", "not allowed", None),
    ],
)
def test_refusals_say_why_and_where(
    text: str, font: str, kind: str, reason: str, position: int | None
) -> None:
    with pytest.raises(TextNotEngravable, match=reason) as refused:
        check_engravable(text, font, TEMPLATES["ring_band"])
    assert refused.value.kind == kind
    assert refused.value.kind in REFUSAL_KINDS
    assert refused.value.position == position


def test_substituted_glyph_is_refused_where_it_stands() -> None:
    with pytest.raises(TextNotEngravable, match="no glyph") as refused:
        check_engravable("a^b", "rowmans", TEMPLATES["ring_band"])
    assert (refused.value.kind, refused.value.position) == ("no_glyph", 1)


def test_text_that_would_be_too_small_is_refused() -> None:
    tiny = ItemTemplate.model_validate(GOOD_TEMPLATE | {"name": "tiny", "min_char_height_mm": 1.5})
    check_engravable("Mia", "futural", tiny)
    with pytest.raises(TextNotEngravable, match="minimum") as refused:
        check_engravable("Mmmmmmmmmm", "futural", tiny)
    assert refused.value.kind == "too_small"


def test_layout_facts_for_verification() -> None:
    toolpath = render_text("Anna & Jo", template=TEMPLATES["ring_band"], max_char_height_mm=1.0)
    assert toolpath.font == "futural"
    assert toolpath.template == "ring_band"
    assert toolpath.char_height_mm == pytest.approx(1.0)
    assert [g.index for g in toolpath.glyphs] == [0, 1, 2, 3, 5, 7, 8]
    assert [(gap.after_index, gap.before_index) for gap in toolpath.word_gaps] == [(3, 5), (5, 7)]
    assert all(gap.x1 > gap.x0 for gap in toolpath.word_gaps)
    assert toolpath.burn_length_mm > 0
    assert toolpath.travel_length_mm > 0
    assert "Anna" not in repr(toolpath)  # personal data stays out of logs


# --- G-code --------------------------------------------------------------------------------


def test_gcode_is_laser_safe() -> None:
    toolpath = render_text("Mia", template=TEMPLATES["pendant_disc"])
    lines = to_gcode(toolpath, power_s=700, feed_mm_min=900).lines
    assert lines[:2] == ("G21 G90", "M4 S0")
    assert lines[-1] == "M5 S0"
    moves = lines[2:-1]
    assert all(line.startswith(("G0 ", "G1 ")) for line in moves)
    assert not any("S" in line for line in moves if line.startswith("G0"))
    first_burn = next(line for line in moves if line.startswith("G1"))
    assert first_burn.endswith(" F900 S700")
    assert not any("M3" in line for line in lines)


def test_frame_traces_the_bounding_box_at_low_power() -> None:
    toolpath = render_text("Mia", template=TEMPLATES["pendant_disc"])
    lines = frame_gcode(toolpath).lines
    burns = [line for line in lines if line.startswith("G1")]
    assert len(burns) == 4
    assert burns[0].endswith("S10")
    box = toolpath.bbox
    assert lines[2] == f"G0 X{format_number(box.x0)} Y{format_number(box.y0)}"


def test_estimate_is_distance_over_feed() -> None:
    toolpath = render_text("-", template=TEMPLATES["bar_pendant"])  # one straight stroke
    program = to_gcode(toolpath, power_s=500, feed_mm_min=600, travel_mm_min=6000)
    expected = toolpath.burn_length_mm / 10 + toolpath.travel_length_mm / 100
    assert program.estimated_seconds == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (2.0, "2"),
        (-0.0001, "0"),
        (0.1235, "0.123"),
        (12.3456, "12.346"),
        (-3.25, "-3.25"),
    ],
)
def test_numbers_are_formatted_deterministically(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"power_s": 1001},
        {"power_s": -1},
        {"power_s": 2.5},
        {"feed_mm_min": 0},
        {"feed_mm_min": float("nan")},
    ],
)
def test_bad_laser_settings_are_refused(kwargs: dict[str, float]) -> None:
    toolpath = render_text("Mia", template=TEMPLATES["pendant_disc"])
    settings_ = {"power_s": 500, "feed_mm_min": 600.0} | kwargs
    with pytest.raises(ValueError, match="must be"):
        to_gcode(toolpath, **settings_)  # type: ignore[arg-type]


def test_program_hash_is_pinned() -> None:
    """Job records keep this hash: a change here changes what old evidence means. Bump with care."""
    program = to_gcode(
        render_text("Anna & Jo 2024", template=TEMPLATES["ring_band"]), power_s=800, feed_mm_min=600
    )
    assert len(program.lines) == 154
    assert program.sha256 == "6c375b6cf9eb10f349282a2a2d458b001349e7d6df5974ecf19893311001056d"
