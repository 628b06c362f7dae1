"""The executor snippet in the README verifies real signed commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from guardian.actions.commands import build_command
from guardian.engine.decision import DeployInfo

README = Path(__file__).resolve().parents[3] / "README.md"


def _snippet_verify() -> Any:
    text = README.read_text()
    section = text[text.index("## Verifying commands") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


def test_readme_snippet_accepts_signed_and_rejects_tampered_commands() -> None:
    """Plain json + hmac, as documented, agrees with the guardian's signatures."""
    verify = _snippet_verify()
    deploy = DeployInfo(
        deploy_id="d-é",
        service="checkout",
        environment="production",
        version="2.4.1",
        previous_version="2.4.0",
        strategy="progressive",
        component="database",
        regions=("us-east", "eu-west"),
        started_at_ms=1795478400000,
    )
    command = build_command(
        deploy,
        trigger="automatic",
        reason="error rate 8.3% → rollback",
        issued_at_ms=1795478460123,
        rule="error-rate-critical",
        evidence={
            "metric": "error_rate",
            "observed": 0.083,
            "threshold": 0.05,
            "baseline": 0.004,
            "window_s": 30.0,
            "samples": 41,
            "tiny": 1e-7,
        },
        signing_key=b"k",
    ).model_dump(mode="json")
    assert verify(command, b"k")
    assert not verify({**command, "to_version": "0"}, b"k")
    assert not verify(command, b"other")
