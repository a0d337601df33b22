"""FastAPI dependencies: the API key header -> the caller's key record, checked against a role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from .keys import KeyRecord, authenticate
from .problems import Problem

KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False,
                              description="API key made by `locard keys create --role ROLE --bureau NAME`")


def get_service(request: Request):
    """The :class:`api.service.QueryService` of the running app."""
    return request.app.state.service


def caller(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> KeyRecord:
    record = authenticate(request.app.state.service.db, key)
    if record is None:
        raise Problem(401, f"a valid API key is required in the {KEY_HEADER} header",
                      headers={"WWW-Authenticate": f'ApiKey header="{KEY_HEADER}"'})
    request.state.key = record
    return record


def require(*roles: str):
    """Dependency: the caller's key, refused with 403 unless its role is one of ``roles``."""

    def check(record: Annotated[KeyRecord, Depends(caller)]) -> KeyRecord:
        if record.role not in roles:
            raise Problem(403, f"this operation needs a key with the role {' or '.join(roles)}; "
                               f"this key's role is {record.role}")
        return record

    return Depends(check)


AnyKey = Annotated[KeyRecord, Depends(caller)]
Searcher = Annotated[KeyRecord, require("examiner", "bureau")]
Reader = Annotated[KeyRecord, require("examiner", "bureau")]
Examiner = Annotated[KeyRecord, require("examiner")]
Bureau = Annotated[KeyRecord, require("bureau")]
Auditor = Annotated[KeyRecord, require("auditor")]
Admin = Annotated[KeyRecord, require("admin")]
