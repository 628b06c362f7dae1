"""Manual rollbacks with second-person approval: tokens, roles, the request state machine.

Pure parts (``tokens``, ``policy``, ``requests``, ``records``, ``view``) do
no network I/O and read no clock; ``service`` sequences them over two small
Protocols (the request log and the output writer).
"""
