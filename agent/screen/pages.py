"""The screen's one HTML page: a status bar, the sign-in keypad, the work area and the dialogs.

The script (``static/screen.js``) fills the status bar and the work area from the event
stream; the sign-in form and the dialogs are static here so a re-render never wipes what a
technician is typing. No CDN: everything comes from the agent.
"""

from __future__ import annotations

from html import escape

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back")
KEY_LABELS = {"clear": "Clear", "back": "⌫"}


def _keypad() -> str:
    keys = "".join(
        f"<button type='button' class='key' data-key='{key}'"
        f"{' aria-label=' + repr('Delete last digit') if key == 'back' else ''}>"
        f"{escape(KEY_LABELS.get(key, key))}</button>"
        for key in KEYS
    )
    return f"<div class='keypad' role='group' aria-label='PIN keypad'>{keys}</div>"


def _sign_in() -> str:
    return (
        "<section id='signin' class='signin' hidden><h1>Sign in</h1>"
        "<form id='signin-form' autocomplete='off'>"
        "<label for='badge'>Badge</label>"
        "<input id='badge' name='badge' inputmode='numeric' required autofocus>"
        "<label for='pin'>PIN</label>"
        "<input id='pin' name='pin' type='password' inputmode='numeric' required>"
        f"{_keypad()}"
        "<p id='signin-problem' class='problem' role='alert'></p>"
        "<button type='submit' class='primary' accesskey='s'>Sign in</button>"
        "</form></section>"
    )


def _dialogs() -> str:
    fire = (
        "<dialog id='fire-dialog' aria-labelledby='fire-title'>"
        "<h2 id='fire-title'>Fire the laser?</h2>"
        "<p>The laser engraves <strong id='fire-text' class='engraving-text'></strong>"
        " on <strong id='fire-piece'></strong>.</p>"
        "<p>Check the piece is in the jig and the lid is closed.</p>"
        "<div class='row'><button type='button' id='fire-cancel' autofocus>Cancel</button>"
        "<button type='button' id='fire-go' class='danger'>Fire laser now</button></div>"
        "</dialog>"
    )
    reason = (
        "<dialog id='reason-dialog' aria-labelledby='reason-title'>"
        "<form id='reason-form' method='dialog'><h2 id='reason-title'></h2>"
        "<label for='reason-device' id='reason-device-label'>Device</label>"
        "<select id='reason-device'></select>"
        "<label for='reason-text'>Reason</label>"
        "<textarea id='reason-text' rows='3' maxlength='500' required></textarea>"
        "<p id='reason-problem' class='problem' role='alert'></p>"
        "<div class='row'><button type='button' id='reason-cancel'>Cancel</button>"
        "<button type='submit' id='reason-go' class='primary'>Send</button></div>"
        "</form></dialog>"
    )
    return fire + reason


def shell(station_id: str) -> str:
    """The page for station ``station_id``."""
    title = f"Station {escape(station_id)}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title} - benchfleet</title>"
        "<link rel='stylesheet' href='/static/screen.css'></head><body>"
        f"<header id='status' class='status'><strong>{title}</strong>"
        "<span id='hub' class='pill'>connecting</span><span id='devices' class='devices'></span>"
        "<span id='alarms' class='alarm-count'></span><span id='who' class='who'></span></header>"
        "<div id='banners' class='banners' role='status' aria-live='polite'></div>"
        f"<main id='main'>{_sign_in()}<div id='work' hidden></div></main>"
        "<div id='toast' class='toast' role='alert' hidden></div>"
        f"{_dialogs()}<script src='/static/screen.js'></script></body></html>"
    )
