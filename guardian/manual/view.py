"""The in-memory view of manual rollback requests, and an in-memory request log.

``RequestView`` is what every replica holds after reading the request log:
the newest revision of each request, in creation order. ``MemoryRequestLog``
is the request log without a broker (unit tests, ``guardian`` tools); the
Kafka-backed log in ``guardian.kafka.request_log`` shares the view.
"""

from __future__ import annotations

from collections.abc import Iterator

from guardian.manual.requests import RollbackRequest, Status, newer


class RequestView:
    """Newest revision of every request, by id, oldest first."""

    def __init__(self) -> None:
        self._by_id: dict[str, RollbackRequest] = {}
        # Ids whose stored status is pending, so sweeps and duplicate checks skip decided ones.
        self._pending: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, req: RollbackRequest) -> bool:
        """Keep ``req`` if it is newer than what the view holds; True when it was kept."""
        if not newer(self._by_id.get(req.id), req):
            return False
        self._by_id[req.id] = req
        if req.status == "pending":
            self._pending.add(req.id)
        else:
            self._pending.discard(req.id)
        return True

    def get(self, request_id: str) -> RollbackRequest | None:
        """One request, or None."""
        return self._by_id.get(request_id)

    def newest_first(self) -> Iterator[RollbackRequest]:
        """Every request, most recently created first."""
        return reversed(self._by_id.values())

    def select(
        self,
        *,
        now_ms: int,
        status: Status | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[RollbackRequest]:
        """Matching requests (status as of ``now_ms``), newest first, at most ``limit``."""
        found: list[RollbackRequest] = []
        for req in self.newest_first():
            if len(found) >= limit:
                break
            if service is not None and req.service != service:
                continue
            if status is not None and req.status_at(now_ms) != status:
                continue
            found.append(req)
        return found

    def pending(self) -> list[RollbackRequest]:
        """Requests whose stored status is still pending (expired or not)."""
        return [self._by_id[rid] for rid in self._pending]


class MemoryRequestLog:
    """A request log in memory: ``put`` applies at once. For tests and single-process tools."""

    def __init__(self) -> None:
        self.view = RequestView()
        self.puts: list[RollbackRequest] = []

    async def put(self, req: RollbackRequest) -> None:
        """Store a new revision of a request."""
        self.puts.append(req)
        self.view.apply(req)
