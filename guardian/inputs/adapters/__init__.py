"""The inputs' adapters: the only modules of ``guardian.inputs`` that do I/O.

``writer`` (the producer), ``bridge`` (the OTLP consumer group) and
``routes`` (``POST /api/v1/write``), put together by ``part.Inputs``.
"""

from guardian.inputs.adapters.part import Inputs

__all__ = ["Inputs"]
