"""HTML of the dashboards: one shell per page (the script renders the data) and the sign-in.

Everything is served by the hub itself (no CDN, works offline); data reaches the page as JSON
and is put in the DOM as text, never as HTML.
"""

from __future__ import annotations

import json
from html import escape

NAV = (("overview", "/dashboard", "Fleet"), ("alarms", "/dashboard/alarms", "Alarms"))


def _head(title: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} - benchfleet</title>"
        "<link rel='stylesheet' href='/dashboard/static/dashboard.css'></head>"
    )


def shell(*, page: str, title: str, user: str, data: dict[str, str]) -> str:
    """The page frame; ``data`` goes to the script as JSON (escaped for a script tag)."""
    links = "".join(
        f"<a href='{href}' class='{'on' if key == page else ''}'>{label}</a>"
        for key, href, label in NAV
    )
    config = json.dumps({"page": page, **data}).replace("<", "\\u003c")
    return (
        f"{_head(title)}<body data-page='{escape(page)}'>"
        f"<header><strong>benchfleet</strong><nav>{links}</nav>"
        f"<span class='live' id='live'>connecting</span>"
        f"<form method='post' action='/dashboard/logout'><span>{escape(user)}</span>"
        "<button>Sign out</button></form></header>"
        f"<main><h1>{escape(title)}</h1><div id='app'></div></main>"
        f"<script id='config' type='application/json'>{config}</script>"
        "<script src='/dashboard/static/dashboard.js'></script></body></html>"
    )


def login_page(problem: str | None = None) -> str:
    """The sign-in form: an engineer's or admin's API key."""
    note = f"<p class='problem'>{escape(problem)}</p>" if problem else ""
    return (
        f"{_head('Sign in')}<body class='login'><main><h1>benchfleet dashboards</h1>{note}"
        "<form method='post' action='/dashboard/login'>"
        "<label for='api_key'>Engineer or admin API key</label>"
        "<input id='api_key' name='api_key' type='password' autocomplete='off' required>"
        "<button type='submit'>Sign in</button></form></main></body></html>"
    )
