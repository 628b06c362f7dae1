"""Metrics from the ecosystem into v1 metric events: OTLP from Kafka, Prometheus remote write.

Pure, table-tested pieces, read in the order a sample travels:

- ``mapping``: ``inputs.yaml`` (which attributes and metric names mean what);
- ``otlp`` and ``remote_write``: decoding (``DecodeError`` for anything
  unreadable) and conversion of one record or request;
- ``cumulative``: counters into per-interval increments, bounded state;
- ``assemble``: contributions into ``MetricEvent``\\s, histogram quantiles;
- ``records``: the Kafka records to write (events keyed by service, dead letters).

``adapters`` is the only part that does I/O (aiokafka, aiohttp); an
import-linter contract keeps it that way.
"""
