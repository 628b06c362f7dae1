"""The manual rollback HTTP API (``/v1/rollbacks``, ``/openapi.json``) and its wiring part."""

from guardian.api.component import ManualRollbacks

__all__ = ["ManualRollbacks"]
