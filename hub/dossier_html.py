"""The dossier as a page a jeweler can print for an insurer (plain HTML, every value escaped)."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body { font-family: Georgia, serif; margin: 2em auto; max-width: 60em; color: #222; }
h1, h2, h3 { font-family: Helvetica, Arial, sans-serif; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0ede6; }
code { font-size: 0.85em; word-break: break-all; }
.ok { color: #17612d; } .bad { color: #a11; font-weight: bold; }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _evidence(items: list[dict[str, Any]]) -> str:
    parts = []
    for item in items:
        proof = (
            item["sha256"]
            or item["code"]
            or (f"{item['value']} {item['unit'] or ''}" if item["value"] is not None else "")
        )
        signer = f" signed by {_e(item['by'])}" if item["by"] else ""
        parts.append(f"{_e(item['kind'])}: <code>{_e(proof)}</code>{signer}")
    return "<br>".join(parts)


def _job(job: dict[str, Any]) -> str:
    steps = [
        [
            _e(s["name"]),
            _e(s["kind"]),
            _e(s["state"])
            + (
                f" <span class=bad>missing {_e(', '.join(s['missing']))}</span>"
                if s["missing"]
                else ""
            ),
            _e(", ".join(s["evidence_required"]) or "-"),
            "yes" if s["signoff_required"] else "no",
            _evidence(s["evidence"]),
        ]
        for s in job["steps"]
    ]
    history = [
        [
            _e(h["at"]),
            f"{_e(h['from'])} &rarr; {_e(h['to'])}",
            _e(h["version"]),
            _e(h["actor"]),
            _e(h["reason"]),
        ]
        for h in job["history"]
    ]
    return (
        f"<h3>Line {_e(job['line_id'])}: job <code>{_e(job['job_id'])}</code></h3>"
        f"<p>Status <b>{_e(job['status'])}</b> (v{_e(job['version'])}), station "
        f"{_e(job['station_id'] or '-')}, origin {_e(job['origin'])}"
        + (f", approved by {_e(job['approved_by'])}" if job["approved_by"] else "")
        + "</p>"
        + _table(["step", "kind", "state", "evidence required", "sign-off", "evidence"], steps)
        + _table(["when (UTC)", "transition", "version", "who", "why"], history)
    )


def render_dossier(dossier: dict[str, Any]) -> str:
    """The HTML page of a dossier built by :func:`hub.dossier.build_dossier`."""
    order = dossier["order"]
    intact = dossier["audit_intact"]
    verdict = (
        "<p class=ok>Every audit entry of this order matches its hash.</p>"
        if intact
        else "<p class=bad>Audit entries of this order do NOT match their hashes: tampering.</p>"
    )
    audit_rows = [
        [
            _e(a["seq"]),
            _e(a["at"]),
            _e(a["actor"]),
            _e(a["action"]),
            _e(a["station_id"] or "-"),
            f"<code>{_e(a['hash'])}</code>",
            "<span class=ok>ok</span>" if a["intact"] else "<span class=bad>ALTERED</span>",
        ]
        for a in dossier["audit"]
    ]
    lines = "".join(
        f"<li>{_e(line['line_id'])}: {_e(line['piece']['sku'])} serial "
        f"{_e(line['piece']['serial'])}</li>"
        for line in order["lines"]
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Dossier {_e(order['external_id'])}</title><style>{STYLE}</style></head><body>"
        f"<h1>Chain of custody: order {_e(order['external_id'])}</h1>"
        f"<p>Received {_e(order['created_at'])} from {_e(order['integrator'] or '-')}, due "
        f"{_e(order['due_at'])}{' (rush)' if order['rush'] else ''}. Request SHA-256 "
        f"<code>{_e(order['content_sha256'])}</code>.</p><ul>{lines}</ul>"
        + "".join(_job(job) for job in dossier["jobs"])
        + "<h2>Audit chain entries</h2>"
        + verdict
        + _table(["seq", "when (UTC)", "who", "what", "station", "hash", "check"], audit_rows)
        + f"<p>Verify the whole chain with <code>{_e(dossier['verify_whole_chain'])}</code>.</p>"
        + "</body></html>"
    )
