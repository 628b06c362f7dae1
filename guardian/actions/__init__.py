"""Turning decisions into output records: commands, audit records, notification outbox entries.

Pure functions: the caller passes the wall-clock time of issue and the signing key.
"""
