"""Rollback Guardian: watches deployments and rolls them back before users notice."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("guardian")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0+unknown"
