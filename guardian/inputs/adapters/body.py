"""Reading a request body with a size cap, for the ingest and webhook routes.

``request.content.read(n)`` returns what is buffered now, not ``n`` bytes, so
a body that arrives in several segments would be cut short; this reads it
whole, chunk by chunk, and refuses it (413) as soon as it passes the cap.
"""

from __future__ import annotations

from aiohttp import web

from guardian.api.problems import ProblemError

_CHUNK_BYTES = 64 * 1024


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole body, or a 413 problem naming ``what`` once it exceeds ``limit`` bytes."""
    too_large = ProblemError(413, "too-large", f"{what} above {limit} bytes are refused")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
