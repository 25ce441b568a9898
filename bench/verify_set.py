"""Labelled engraving photos for the verification benchmark: ``generate(count, seed)``.

Every sample is a pure function of ``(seed, index)``: the same call yields the same pixels.

How a photo is made:

- text: a realistic engraving (names, initials with "&", dates, short phrases); about 40 % of
  samples are near-miss negatives, the 7 edit kinds of :mod:`bench.verify_texts` in turn
  (index ``i`` is a negative when ``i % 5`` is 0 or 1), each a physically visible change;
- font: a single-stroke Hershey font allowed on an item template, laid out and burned exactly
  as the laser does (``render_text`` + :class:`BurnCanvas`); or a DejaVu TTF (Sans, Serif, Sans
  Mono) rendered with Pillow and darkened into the same metal texture (template ``None``);
- metal: gold, silver or steel, brushed texture seeded per sample;
- view: the station camera is framed on the engraving: the item is cropped around the text's
  ink with a margin of half a cap height to one and a half (the item's edge and the jig show
  where the margin passes them), and placed by :func:`drivers.camera.scene.photograph` in a
  640 x 480 frame on the bench mat (the view is 336 px wide whatever the text's length);
- difficulty: even indices are ``clean``, odd ones ``hard``: one of glare, low contrast, blur,
  perspective, ring-band curvature (a cylindrical warp with shading; Hershey samples with it
  are on the ``ring_band`` template) in turn, plus another one 40 % of the time (combined).
  ``conditions`` lists the metal first, then the hard conditions applied.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.verify_texts import EDIT_KINDS, EditKind, GlyphRules, apply_edit, realistic_text
from drivers.camera.scene import ITEM_FILL, ShotConditions, crop_on_mat, photograph
from drivers.laser.burn import METALS, BurnCanvas
from drivers.laser.fonts import PRINTABLE_ASCII, identical_glyphs, load_font
from drivers.laser.templates import ItemTemplate, load_templates
from drivers.laser.toolpath import TextNotEngravable, check_engravable, render_text

BGR = np.ndarray  # uint8, H x W x 3, as OpenCV and photograph() use it

EDITS: tuple[str, ...] = ("none", *EDIT_KINDS)
DIFFICULTIES = ("clean", "hard")
HARD_CONDITIONS = ("glare", "low_contrast", "blur", "perspective", "curvature")
BENCH_METALS = ("gold", "silver", "steel")
TTF_DIR = Path("/usr/share/fonts/truetype/dejavu")
TTF_FONTS = tuple(
    str(TTF_DIR / name) for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
)
TTF_SHARE = 0.3  # of samples in a TTF font
TTF_MAX_CHARS = 24
FRAME_WIDTH, FRAME_HEIGHT = 640, 480
CANVAS_CAP_PX = 64  # cap height on the canvas before the camera scales it down
_TEMPLATE_WEIGHTS = {"ring_band": 4, "bar_pendant": 2, "pendant_disc": 2, "watch_caseback": 2}
_MAX_ATTEMPTS = 200


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled photo; ``engraved == ordered`` exactly when ``edit == "none"``."""

    image: np.ndarray  # BGR uint8 photo
    ordered: str  # the text the customer ordered
    engraved: str  # what is actually engraved
    font: str  # Hershey font name (drivers.laser.fonts) or a .ttf path
    template: str | None  # item template id, None for TTF samples
    edit: str  # "none" or one of bench.verify_texts.EDIT_KINDS
    difficulty: str  # "clean" | "hard"
    conditions: tuple[str, ...]  # metal, then hard conditions, e.g. ("gold", "glare")
    seed: int  # the sample's own seed, derived from (seed, index)


@dataclass(frozen=True, slots=True)
class _Plan:
    ordered: str
    engraved: str
    font: str
    template: str | None


def generate(count: int, seed: int = 0, *, difficulty: str | None = None) -> Iterator[Sample]:
    """The first ``count`` samples of set ``seed`` (only ``difficulty`` ones, when given)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES} or None, got {difficulty!r}")
    indices = (i for i in itertools.count() if difficulty in (None, difficulty_of(i)))
    for index in itertools.islice(indices, count):
        yield sample_at(index, seed)


def difficulty_of(index: int) -> str:
    """Even indices are clean, odd ones hard."""
    return DIFFICULTIES[index % 2]


def edit_of(index: int) -> str:
    """``"none"`` for positives; negatives (i % 5 in {0, 1}) cycle through the 7 edit kinds."""
    if index % 5 > 1:
        return "none"
    return EDIT_KINDS[((index // 5) * 2 + index % 5) % len(EDIT_KINDS)]


def sample_at(index: int, seed: int = 0) -> Sample:
    """Sample ``index`` of set ``seed``."""
    sample_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    rng = random.Random(sample_seed)
    difficulty, edit = difficulty_of(index), edit_of(index)
    conditions = _hard_conditions(index, rng) if difficulty == "hard" else ()
    metal = rng.choice(BENCH_METALS)
    plan = _plan_text(edit, "curvature" in conditions, rng)
    image = _photograph(plan, metal, conditions, rng, sample_seed)
    return Sample(
        image=image,
        ordered=plan.ordered,
        engraved=plan.engraved,
        font=plan.font,
        template=plan.template,
        edit=edit,
        difficulty=difficulty,
        conditions=(metal, *conditions),
        seed=sample_seed,
    )


def _hard_conditions(index: int, rng: random.Random) -> tuple[str, ...]:
    primary = HARD_CONDITIONS[(index // 2) % len(HARD_CONDITIONS)]
    if rng.random() >= 0.4:
        return (primary,)
    extra = rng.choice([c for c in HARD_CONDITIONS if c != primary])
    return tuple(c for c in HARD_CONDITIONS if c in (primary, extra))


@cache
def _templates() -> dict[str, ItemTemplate]:
    return load_templates()


def _plan_text(edit: str, on_ring: bool, rng: random.Random) -> _Plan:
    """Text, font and template such that both the ordered and engraved text can be made."""
    for _ in range(_MAX_ATTEMPTS):
        font, template = _pick_font(on_ring, rng)
        ordered = realistic_text(rng)
        if not _engravable(ordered, font, template):
            continue
        engraved = ordered
        if edit != "none":
            edited = apply_edit(ordered, _edit_kind(edit), rng, _rules(font))
            if edited is None or not _engravable(edited, font, template):
                continue
            engraved = edited
        return _Plan(ordered, engraved, font, template)
    raise RuntimeError(f"no text found for edit {edit!r} in {_MAX_ATTEMPTS} attempts")


def _edit_kind(edit: str) -> EditKind:
    for kind in EDIT_KINDS:
        if kind == edit:
            return kind
    raise ValueError(f"unknown edit {edit!r}")


def _pick_font(on_ring: bool, rng: random.Random) -> tuple[str, str | None]:
    if rng.random() < TTF_SHARE:
        return rng.choice(TTF_FONTS), None
    names = list(_TEMPLATE_WEIGHTS)
    name = "ring_band" if on_ring else rng.choices(names, [_TEMPLATE_WEIGHTS[n] for n in names])[0]
    return rng.choice(_templates()[name].fonts), name


def _engravable(text: str, font: str, template: str | None) -> bool:
    if template is None:
        return len(text) <= TTF_MAX_CHARS and all(char in PRINTABLE_ASCII for char in text)
    try:
        check_engravable(text, font, _templates()[template])
    except TextNotEngravable:
        return False
    return True


@cache
def _rules(font: str) -> GlyphRules:
    if font.endswith(".ttf"):
        return GlyphRules(lambda char: char in PRINTABLE_ASCII, _ttf_twins(font))
    return GlyphRules(load_font(font).can_render, identical_glyphs(font))


def _ttf_twins(path: str) -> frozenset[frozenset[str]]:
    """Characters the TTF draws with identical pixels (DejaVu has none; other fonts may)."""
    face = ImageFont.truetype(path, 40)
    groups: dict[tuple[bytes, tuple[int, ...]], set[str]] = {}
    for char in sorted(PRINTABLE_ASCII - {" "}):
        mask = face.getmask(char)
        key = (bytes(mask), (*mask.size, *face.getbbox(char)))
        groups.setdefault(key, set()).add(char)
    return frozenset(frozenset(chars) for chars in groups.values() if len(chars) > 1)


# --- pixels -----------------------------------------------------------------------------------


def _photograph(
    plan: _Plan, metal: str, conditions: tuple[str, ...], rng: random.Random, seed: int
) -> BGR:
    low = "low_contrast" in conditions
    power = rng.uniform(0.12, 0.25) if low else rng.uniform(0.75, 1.0)
    margin = (rng.uniform(0.4, 1.0), rng.uniform(0.6, 1.4))  # cap heights, x and y
    if plan.template is None:
        view = _ttf_view(plan.engraved, plan.font, metal, power, margin, seed)
    else:
        view = _hershey_view(plan, metal, power, margin, rng, seed)
    if "curvature" in conditions:
        view = _ring_curvature(view, rng)
    shot = ShotConditions(
        width=FRAME_WIDTH,
        height=FRAME_HEIGHT,
        light=rng.uniform(0.55, 0.8) if low else rng.uniform(0.9, 1.1),
        glare=rng.uniform(0.7, 1.0) if "glare" in conditions else 0.0,
        blur=rng.uniform(1.3, 2.2) if "blur" in conditions else rng.uniform(0.0, 0.6),
        perspective=rng.uniform(0.04, 0.08) if "perspective" in conditions else 0.0,
        noise=rng.uniform(3.0, 7.0) if conditions else rng.uniform(0.5, 2.0),
        seed=seed,
    )
    return photograph(_fit_to_frame(view), shot, 0)


def _hershey_view(
    plan: _Plan,
    metal: str,
    power: float,
    margin: tuple[float, float],
    rng: random.Random,
    seed: int,
) -> BGR:
    template = _templates()[plan.template or ""]
    toolpath = render_text(plan.engraved, font=plan.font, template=template)
    cap_mm = toolpath.char_height_mm
    px_per_mm = CANVAS_CAP_PX / cap_mm
    # Deep engravings on big letters: the line width follows the letter size, as a job's
    # passes/spot would, so every template looks engraved rather than scratched.
    spot_mm = cap_mm * rng.uniform(0.06, 0.1)
    canvas = BurnCanvas(template, metal=metal, px_per_mm=px_per_mm, seed=seed, spot_mm=spot_mm)
    for stroke in toolpath.strokes:
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            canvas.burn_segment(x0, y0, x1, y1, power_fraction=power)
    left, top = canvas.to_px(toolpath.bbox.x0, toolpath.bbox.y1)
    right, bottom = canvas.to_px(toolpath.bbox.x1, toolpath.bbox.y0)
    pad_x, pad_y = margin[0] * CANVAS_CAP_PX, margin[1] * CANVAS_CAP_PX
    box = (round(left - pad_x), round(top - pad_y), round(right + pad_x), round(bottom + pad_y))
    return crop_on_mat(canvas.image, list(box))


def _ttf_view(
    text: str, path: str, metal: str, power: float, margin: tuple[float, float], seed: int
) -> BGR:
    face = ImageFont.truetype(path, round(CANVAS_CAP_PX / 0.73))  # DejaVu cap height: 0.73 em
    x0, y0, x1, y1 = (int(v) for v in face.getbbox(text))
    pad_x, pad_y = round(margin[0] * CANVAS_CAP_PX), round(margin[1] * CANVAS_CAP_PX)
    width, height = x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).text((pad_x - x0, pad_y - y0), text, fill=255, font=face)
    px_per_mm = 40.0
    plate = ItemTemplate(
        name="ttf_plate",
        item_width_mm=width / px_per_mm,
        item_height_mm=height / px_per_mm,
        area_width_mm=width / px_per_mm,
        area_height_mm=height / px_per_mm,
        max_chars=TTF_MAX_CHARS,
    )
    item = BurnCanvas(plate, metal=metal, px_per_mm=px_per_mm, seed=seed).image
    blank: BGR = cv2.resize(item, (width, height), interpolation=cv2.INTER_NEAREST)
    # Same darkening law as BurnCanvas.burn_segment: oxide grows with the root of power.
    alpha = (np.asarray(mask, np.float32) / 255.0 * 0.95 * math.sqrt(power))[..., None]
    burn = np.array(METALS[metal].burn_bgr, np.float32)
    burnt = blank.astype(np.float32) * (1.0 - alpha) + burn * alpha
    view: BGR = np.clip(np.rint(burnt), 0, 255).astype(np.uint8)
    return view


def _ring_curvature(view: BGR, rng: random.Random) -> BGR:
    """The view wrapped on a ring band (a cylinder, axis vertical) seen from the front.

    Text near the edges is foreshortened and darker (the band turns away from the lamp); a
    small tilt bows the lines.
    """
    height, width = view.shape[:2]
    half_angle = rng.uniform(0.8, 1.2)  # radians the band turns between centre and edge
    radius = (width / 2) / half_angle
    out_width = max(1, round(2 * radius * math.sin(half_angle)))
    xs = (np.arange(out_width, dtype=np.float32) - out_width / 2) / radius
    theta = np.arcsin(np.clip(xs, -1.0, 1.0))
    bow = rng.choice((-1, 1)) * rng.uniform(0.1, 0.25) * height * (1.0 - np.cos(theta))
    map_x = np.tile((theta * radius + width / 2).astype(np.float32), (height, 1))
    map_y = (np.arange(height, dtype=np.float32)[:, None] + bow[None, :]).astype(np.float32)
    warped = cv2.remap(view, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    shade = (0.55 + 0.45 * np.cos(theta))[None, :, None]
    curved: BGR = np.clip(warped.astype(np.float32) * shade, 0, 255).astype(np.uint8)
    return curved


def _fit_to_frame(view: BGR) -> BGR:
    """``view`` at the size the camera shows it, so photograph()'s nearest resize is a copy."""
    side = ITEM_FILL * min(FRAME_WIDTH, FRAME_HEIGHT)
    scale = side / max(view.shape[:2])
    size = (max(1, round(view.shape[1] * scale)), max(1, round(view.shape[0] * scale)))
    fitted: BGR = cv2.resize(view, size, interpolation=cv2.INTER_AREA)
    return fitted
