"""Notifications: who hears about a decision (subscriptions), what they read (render),
how often (grouping), and how it gets there (senders, retries).

Only ``senders`` imports slack_sdk and aiosmtplib; ``subscriptions``, ``render``,
``grouping`` and ``retry`` are pure. ``Notifier`` (in ``notifier``) ties them to
the durable outbox consumer in ``guardian.kafka.outbox``.
"""
