"""From an order line to a job's ordered steps, with the evidence each requires, who signs it
off, and how long it should take (for scheduling and promises)."""

from __future__ import annotations

from hub.catalogue import Catalogue, catalogue
from hub.order_request import OrderLine
from protocol.models import EvidenceKind, StepKind, StepParam, StepSpec


def _step(
    name: str,
    kind: StepKind,
    evidence: list[EvidenceKind],
    *,
    signoff: bool = False,
    irreversible: bool = False,
    params: dict[str, StepParam] | None = None,
) -> StepSpec:
    return StepSpec(
        name=name,
        kind=kind,
        evidence=evidence,
        signoff_required=signoff,
        irreversible=irreversible,
        params=params or {},
    )


def _inspection(prefix: str, *, weigh: bool) -> list[StepSpec]:
    steps = [_step(f"{prefix}_photo", StepKind.PHOTO, ["photo"])]
    if weigh:
        steps.append(_step(f"{prefix}_weight", StepKind.WEIGH, ["weight"]))
    return steps


def build_steps(line: OrderLine, *, weigh: bool, cat: Catalogue | None = None) -> list[StepSpec]:
    """Pre-inspection, engraving (+ its photo), cleaning, certificate match, packing,
    post-inspection; only what the line asks for, in that order."""
    cat = cat or catalogue()
    steps = _inspection("inspect_in", weigh=weigh)
    if line.engraving is not None:
        template = cat.templates[line.engraving.template]
        params: dict[str, StepParam] = {
            "template": template.id,
            "font": line.engraving.font,
            "position": line.engraving.position or template.positions[0],
            "field_mm": template.field_mm,
            "max_chars": template.max_chars,
        }
        steps.append(
            _step("engrave", StepKind.ENGRAVE, ["gcode"], irreversible=True, params=params)
        )
        # The hub reads this step's proof photo against the ordered text (hub.verification).
        verify: dict[str, StepParam] = {"verify": "engraving"}
        steps.append(_step("engraving_photo", StepKind.PHOTO, ["photo"], params=verify))
    if line.cleaning is not None:
        method = line.cleaning.method
        if method == "hand":
            clean: dict[str, StepParam] = {"method": method}
            steps.append(_step("clean", StepKind.MANUAL, ["photo"], signoff=True, params=clean))
        else:
            clean = {"method": method}
            steps.append(_step("clean", StepKind.CLEAN, [], irreversible=True, params=clean))
    if line.certificate is not None:
        cert: dict[str, StepParam] = {
            "certificate": line.certificate.kind,
            "number": line.certificate.number,
        }
        steps.append(_step("certificate_match", StepKind.SCAN, ["scan"], params=cert))
    if line.packaging is not None:
        pack: dict[str, StepParam] = {"box": line.packaging.box}
        if line.packaging.insert:
            pack["insert"] = line.packaging.insert
        if line.packaging.gift_message:
            pack["gift_message"] = line.packaging.gift_message  # personal data
        steps.append(_step("pack", StepKind.MANUAL, ["photo"], signoff=True, params=pack))
    steps += _inspection("inspect_out", weigh=weigh)
    return steps


def estimate_seconds(
    steps: list[StepSpec], text_length: int, cat: Catalogue | None = None
) -> float:
    """The standard time of a job's steps on a station (catalogue ``step_seconds``)."""
    cat = cat or catalogue()
    total = 0.0
    for step in steps:
        if step.kind is StepKind.ENGRAVE:
            template = cat.templates.get(str(step.params.get("template")))
            per_char = template.engrave_per_char_s if template else 1.5
            total += cat.seconds("engrave_base") + per_char * text_length
        elif step.kind in (StepKind.CLEAN, StepKind.MANUAL) and "method" in step.params:
            total += cat.seconds(f"clean_{step.params['method']}")
        elif step.kind is StepKind.MANUAL:
            total += cat.seconds(step.name)
        elif step.kind is StepKind.SCAN:
            total += cat.seconds("certificate")
        else:
            total += cat.seconds(step.kind.value)
    return total
