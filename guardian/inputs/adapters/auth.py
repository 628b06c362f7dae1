"""Who may call an input route: a bearer token of the tokens file that carries the route's role.

Answers as the manual rollback API does: 401 (with ``WWW-Authenticate``)
without a token the tokens file knows, 403 when it lacks the role.
"""

from __future__ import annotations

from aiohttp import web

from guardian.api.problems import ProblemError
from guardian.manual.tokens import Identity, TokenFile

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="guardian"'}


def require_role(request: web.Request, tokens: TokenFile, role: str) -> Identity:
    """The caller of an input route: 401 without a known bearer token, 403 without ``role``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    who = tokens.identify(token.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "send 'Authorization: Bearer <token>' with a token of the tokens file "
            f"that has the role {role!r}",
            headers=_UNAUTHENTICATED,
        )
    if role not in who.roles:
        raise ProblemError(403, "forbidden", f"{who.id} lacks the role {role!r}")
    return who
