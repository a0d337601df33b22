"""FastAPI dependencies: the API key header -> the caller's key record, checked against a role.

Refusals are audited: a 401 with the presented key's id when it has the shape of a key
(never its secret) and that key's bureau when the id is known; a 403 with the key's
id, role and bureau.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from .keys import KeyRecord, authenticate, key_id_of, lookup
from .problems import Problem

KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False,
                              description="API key made by `locard keys create --role ROLE --bureau NAME`")


def get_service(request: Request):
    """The :class:`api.service.QueryService` of the running app."""
    return request.app.state.service


def _where(request: Request) -> dict:
    return {"method": request.method, "path": request.url.path[:300]}


def caller(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> KeyRecord:
    service = request.app.state.service
    record = authenticate(service.db, key)
    if record is None:
        kid = key_id_of(key)
        known = lookup(service.db, kid) if kid else None
        service.refused({"key": kid, "role": known.role if known else "", "bureau": known.bureau if known else "",
                         **_where(request)}, 401,
                        "no key" if not key else "not a key" if kid is None else
                        "revoked key" if known and known.revoked else "unknown key or wrong secret")
        raise Problem(401, f"a valid API key is required in the {KEY_HEADER} header",
                      headers={"WWW-Authenticate": f'ApiKey header="{KEY_HEADER}"'})
    request.state.key = record
    service.forget_deleted()  # before any access decision: rules of subjects deleted by the CLI are gone
    return record


def require(*roles: str):
    """Dependency: the caller's key, refused with 403 unless its role is one of ``roles``."""

    def check(request: Request, record: Annotated[KeyRecord, Depends(caller)]) -> KeyRecord:
        if record.role not in roles:
            request.app.state.service.refused(
                {"key": record.id, "role": record.role, "bureau": record.bureau, **_where(request)}, 403,
                f"needs the role {' or '.join(roles)}")
            raise Problem(403, f"this operation needs a key with the role {' or '.join(roles)}; "
                               f"this key's role is {record.role}")
        return record

    check.roles = frozenset(roles)  # read by allowed_operations
    return Depends(check)


def _access_of(dependant: Dependant) -> frozenset[str] | None:
    """Roles a route's dependencies require; an empty set: any valid key; None: no key at all."""
    for d in dependant.dependencies:
        roles = getattr(d.call, "roles", None)
        if roles is not None:
            return roles
    for d in dependant.dependencies:
        sub = frozenset() if d.call is caller else _access_of(d)
        if sub is not None:
            return sub
    return None


def allowed_operations(routes, role: str) -> list[tuple[str, str, str]]:
    """``(name, method, path)`` of every documented route a key of ``role`` may call, in route order;
    read from the routes' own role checks, so it cannot drift from them."""
    out: dict[tuple[str, str], str] = {}
    for r in routes:
        if not isinstance(r, APIRoute) or not r.include_in_schema:
            continue
        roles = _access_of(r.dependant)
        if roles is None or not roles or role in roles:
            out.update({(m, r.path): r.name for m in sorted(r.methods)})
    return [(name, m, path) for (m, path), name in out.items()]


AnyKey = Annotated[KeyRecord, Depends(caller)]
Searcher = Annotated[KeyRecord, require("examiner", "bureau")]
Reader = Annotated[KeyRecord, require("examiner", "bureau")]
Examiner = Annotated[KeyRecord, require("examiner")]
CaseReader = Annotated[KeyRecord, require("examiner", "auditor")]
Bureau = Annotated[KeyRecord, require("bureau")]
Auditor = Annotated[KeyRecord, require("auditor")]
Admin = Annotated[KeyRecord, require("admin")]
