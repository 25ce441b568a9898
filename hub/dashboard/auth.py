"""Sign-in for the dashboards: an engineer or admin API key once, then a signed session cookie.

The cookie holds ``name|role|expires|hmac`` signed with the hub's ``secret_key``; every request
checks that a key of that name and role is still configured, so revoking a key ends its
sessions. ``SameSite=Strict`` and an ``X-Dashboard`` header on every write keep other sites
from acting with an engineer's cookie. API clients may send ``X-API-Key`` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from hub.api.auth import Principal
from hub.api.deps import SettingsDep
from hub.settings import HubSettings

COOKIE = "benchfleet_dashboard"
DASHBOARD_ROLES = ("engineer", "admin")
SESSION_S = 8 * 3600  # one shift


def _signature(settings: HubSettings, payload: str) -> str:
    key = hashlib.sha256(b"dashboard-session:" + settings.secret_key.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def principal_for_key(settings: HubSettings, presented: str) -> Principal | None:
    """The dashboard-capable holder of API key ``presented``, or None."""
    for key in settings.effective_api_keys:
        if hmac.compare_digest(key.key.encode(), presented.encode()):
            return Principal(key.name, key.role) if key.role in DASHBOARD_ROLES else None
    return None


def session_cookie(settings: HubSettings, principal: Principal, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_S)
    payload = f"{principal.name}|{principal.role}|{expires}"
    return f"{payload}|{_signature(settings, payload)}"


def principal_from_cookie(
    settings: HubSettings, cookie: str, now: float | None = None
) -> Principal | None:
    """The signed-in engineer, or None for a forged, expired or revoked session."""
    name, _, rest = cookie.partition("|")
    role, _, rest = rest.partition("|")
    expires, _, signature = rest.partition("|")
    payload = f"{name}|{role}|{expires}"
    if not hmac.compare_digest(_signature(settings, payload), signature):
        return None
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    for key in settings.effective_api_keys:
        if key.name == name and key.role == role and role in DASHBOARD_ROLES:
            return Principal(key.name, key.role)
    return None


def _principal(request: Request, settings: HubSettings, api_key: str | None) -> Principal | None:
    if api_key:
        return principal_for_key(settings, api_key)
    cookie = request.cookies.get(COOKIE)
    return principal_from_cookie(settings, cookie) if cookie else None


def page_viewer(
    request: Request,
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal | None:
    """The signed-in engineer or admin; None sends a page to the sign-in form."""
    return _principal(request, settings, x_api_key)


def stream_viewer(
    request: Request,
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The signed-in engineer or admin, or 401 (streams and data)."""
    principal = _principal(request, settings, x_api_key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /dashboard/login")
    return principal


def writer(
    request: Request,
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    x_dashboard: Annotated[str | None, Header()] = None,
) -> Principal:
    """Like :func:`viewer` for writes; a cookie alone is not enough (X-Dashboard: 1)."""
    principal = _principal(request, settings, x_api_key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /dashboard/login")
    if not x_api_key and x_dashboard != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing X-Dashboard header")
    return principal


PageViewer = Annotated[Principal | None, Depends(page_viewer)]
Viewer = Annotated[Principal, Depends(stream_viewer)]
Writer = Annotated[Principal, Depends(writer)]
