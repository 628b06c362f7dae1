"""A remote-write body read series by series, each series' labels kept as their wire bytes.

Prometheus sends the same series in every request; what tells one from
another is its labels, and their serialized form is a ready-made cache key.
Building Python objects for every label of every sample costs more than all
the rest of the conversion, so:

- ``split_envelope`` parses the ``WriteRequest`` envelope only: each
  ``TimeSeries`` stays bytes (the metadata entries are checked as the
  generated message would check them);
- ``SampleSplitter.split`` cuts a series in the shape Prometheus writes it
  (its labels, then one sample with a value and a millisecond timestamp:
  the queue manager sends one sample per series) into its label bytes, the
  value and the timestamp, without parsing the labels. Any other shape is
  None and the caller parses the series with the generated ``TimeSeries``.

A split is trusted only for label bytes the caller parsed, validated and
found to be exactly the series' labels once before: a wrong cut can never be
such bytes (it would end inside a label, or hold the samples' field tag, and
valid label bytes are a run of field-1 entries). Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from guardian.errors import DecodeError
from guardian.inputs.prompb.remote_pb2 import MetricMetadata

_CACHE_LIMIT = 4096
_unpack_double = struct.Struct("<d").unpack_from


class _Envelope(Protocol):
    timeseries: Sequence[bytes]
    metadata: Sequence[bytes]


def _envelope_parser() -> Callable[[bytes], _Envelope]:
    """``WriteRequest`` with its series (field 1) and metadata (field 3) left as bytes."""
    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="guardian/inputs/remote_wire.proto", package="guardian.prompb.wire", syntax="proto3"
    )
    message = file.message_type.add(name="WriteEnvelope")
    for name, number in (("timeseries", 1), ("metadata", 3)):
        message.field.add(
            name=name, number=number, type=proto.TYPE_BYTES, label=proto.LABEL_REPEATED
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    envelope = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("guardian.prompb.wire.WriteEnvelope")
    )
    return cast("Callable[[bytes], _Envelope]", envelope.FromString)


_parse_envelope = _envelope_parser()


def split_envelope(raw: bytes) -> Sequence[bytes]:
    """The serialized ``TimeSeries`` of a ``WriteRequest``; ``DecodeError`` if it is not one."""
    try:
        envelope = _parse_envelope(raw)
        for metadata in envelope.metadata:
            MetricMetadata.FromString(metadata)
    except (ProtobufDecodeError, RecursionError, ValueError) as exc:
        raise DecodeError(f"not a remote-write WriteRequest protobuf: {exc}") from None
    return envelope.timeseries


class SampleSplitter:
    """Cuts series of one sample into (label bytes, value, timestamp); remembers timestamps."""

    def __init__(self) -> None:
        # One scrape's series share their timestamp: its varint is decoded once.
        self._times: dict[bytes, int] = {}

    def split(self, raw: bytes) -> tuple[bytes, float, int] | None:
        """The label bytes, value and timestamp of a series in Prometheus' shape, else None.

        The shape: the labels, then ``0x12 len`` and a sample of ``0x09`` +
        8-byte double (left out when the value is 0) and ``0x10`` + a 6-byte
        varint timestamp (every millisecond time from 2001 to 2109).
        """
        size = len(raw)
        if (
            size >= 18
            and raw[size - 18] == 0x12
            and raw[size - 17] == 16
            and raw[size - 16] == 0x09
            and raw[size - 7] == 0x10
        ):
            cut, value = size - 18, _unpack_double(raw, size - 15)[0]
        elif size >= 9 and raw[size - 9] == 0x12 and raw[size - 8] == 7 and raw[size - 7] == 0x10:
            cut, value = size - 9, 0.0
        else:
            return None
        varint = raw[size - 6 :]
        ts = self._times.get(varint)
        if ts is None:
            ts = _six_byte_varint(varint)
            if ts is None:
                return None
            if len(self._times) >= _CACHE_LIMIT:
                self._times.clear()
            self._times[varint] = ts
        return raw[:cut], value, ts


def _six_byte_varint(data: bytes) -> int | None:
    """A varint of exactly six bytes (five with the continuation bit, then one without)."""
    if data[5] >= 0x80 or any(byte < 0x80 for byte in data[:5]):
        return None
    value = 0
    for shift, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * shift)
    return value
