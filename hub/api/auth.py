"""API keys and roles: integrators send orders; technicians, engineers and admins run the floor.

A key travels in ``X-API-Key`` (or ``Authorization: Bearer <key>``). Keys come from settings
(``BENCHFLEET_API_KEYS``); in development without keys the documented ``dev-*-key`` keys work.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

from hub.api.deps import SettingsDep
from hub.settings import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    name: str
    role: Role
    station: str | None = None
    reviewer: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role}:{self.name}"

    def sees_personal_data(self, station_id: str | None) -> bool:
        """Whether engraving texts and proof photos of work at ``station_id`` are shown to
        this caller (the matrix in docs/security.md "Personal data"). Integrators see the
        texts of their own orders only; the order routes decide that."""
        if self.role == "admin":
            return True
        if self.role == "engineer":
            return self.reviewer
        if self.role == "technician":
            return self.station is None or self.station == station_id
        return False


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def get_principal(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller, or 401."""
    presented = x_api_key or _bearer(authorization)
    if presented:
        for key in settings.effective_api_keys:
            if hmac.compare_digest(key.key.encode(), presented.encode()):
                return Principal(key.name, key.role, key.station, key.reviewer)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown API key (send it as X-API-Key)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require(*roles: Role) -> object:
    """A dependency admitting only ``roles`` (403 for other known callers)."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this ({allowed})"
            )
        return principal

    return Depends(check)


OrderWriter = Annotated[Principal, require("integrator", "admin")]
OrderReader = Annotated[Principal, require("integrator", "technician", "engineer", "admin")]
FloorReader = Annotated[Principal, require("technician", "engineer", "admin")]
Reviewer = Annotated[Principal, require("technician", "engineer", "admin")]
Approver = Annotated[Principal, require("engineer", "admin")]
