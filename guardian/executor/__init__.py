"""The reference executor: applies the guardian's rollback and pause commands to Kubernetes.

``guardian execute`` reads the command topic in a consumer group of its own,
refuses commands whose signature does not verify, applies each command id at
most once (``ledger``), checks that the target still runs the command's
``from_version`` (``plan``), patches Deployments and Argo Rollouts through
``kube``, waits for the rollout to converge and reports ``rolled_back`` or
``failed`` on the deploy topic, which resolves the guardian's incident.

Layout: ``targets`` (targets.yaml), ``plan`` (pure: what to patch, whether it
converged), ``kube`` (the only module that imports lightkube), ``apply`` (one
command on one target: read, plan, patch, retry on conflict, wait),
``ledger`` (the compacted applied-commands topic), ``service`` (the Kafka loop
and the lifecycle), ``metrics`` and ``http`` (``/metrics``, ``/healthz``).
"""
