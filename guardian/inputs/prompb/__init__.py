"""Prometheus remote write 1.0 protobuf messages, generated from ``remote.proto`` beside this."""
