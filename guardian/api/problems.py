"""RFC 9457 problem details: every error of the ``/v1`` API as ``application/problem+json``.

Handlers raise ``ProblemError`` (or ``ManualError`` from the service, mapped
here by kind); the middleware turns it, aiohttp's own HTTP errors (404 of an
unknown path, 405, 413) and any unexpected exception into a problem
document with a message a person can act on. Unexpected exceptions are
logged with their traceback and answered 500 without internals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from guardian.manual.requests import ManualError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://guardian.dev/problems/"
API_PREFIX = "/v1/"

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request body",
    500: "Internal error",
    503: "Temporarily unavailable",
}
_STATUS_BY_KIND = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "expired": 410,
    "unavailable": 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProblemError(Exception):
    """An error answer: status, a slug for ``type``, and what to do about it."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(problem: ProblemError, instance: str) -> web.Response:
    """The problem+json response of an ``ProblemError``."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.slug,
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        **problem.extra,
    }
    return web.Response(
        body=orjson.dumps(body),
        status=problem.status,
        content_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def from_manual_error(exc: ManualError) -> ProblemError:
    """The HTTP problem for a refusal of the manual rollback service."""
    status = _STATUS_BY_KIND[exc.kind]
    headers = {"Retry-After": "1"} if status == 503 else None
    return ProblemError(status, exc.kind.replace("_", "-"), str(exc), headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error under ``/v1/`` as problem+json; other paths are left alone."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ProblemError as problem:
        return problem_response(problem, request.path)
    except ManualError as exc:
        return problem_response(from_manual_error(exc), request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status, "http-error"
        )
        detail = (
            exc.reason if exc.status != 404 else f"no endpoint {request.path}; see /openapi.json"
        )
        kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return problem_response(ProblemError(exc.status, slug, detail, headers=kept), request.path)
    except Exception:
        log.exception("api_internal_error", method=request.method, path=request.path)
        failure = ProblemError(
            500, "internal", "the guardian failed to handle this request; see its log"
        )
        return problem_response(failure, request.path)
