"""Kafka adapters: the only modules that import aiokafka."""
