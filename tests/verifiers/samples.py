"""Signed rollback commands for the cross-language verifiers, built by the guardian's own code.

``build_vectors`` makes ``verifiers/vectors.json``: commands as the daemon
(``outputs_for``) and the manual path (``manual_command``) write them to
Kafka, with the numbers JSON libraries disagree on (``200.0``, ``1e-05``,
``1e-06``, ``1e+21``, ``-0.0``, 2**53 - 1), non-ASCII and control characters,
object keys whose UTF-16 and code-point orders differ, and nested evidence;
then tampered copies that every verifier must refuse. Each vector carries its
key, its RFC 8785 bytes as text and the signature those bytes get.
``random_commands`` makes fresh ones from a seed for the verifier tests.

Refresh the file after a change to commands or signing::

    .venv/bin/python -m tests.verifiers.samples
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from guardian.actions.outputs import outputs_for
from guardian.engine.decision import Decision, DeployInfo
from guardian.manual.records import manual_command
from guardian.manual.requests import RollbackRequest
from guardian.wire.signing import canonical_json, legacy_canonical_json, sign

REPO = Path(__file__).resolve().parents[2]
VECTORS_FILE = REPO / "verifiers" / "vectors.json"
REFRESH = ".venv/bin/python -m tests.verifiers.samples"
KEY = "guardian-test-vector-key"
T0 = 1795478400000  # 2026-11-24T00:00:00Z

Command = dict[str, Any]


def deploy_info(**changes: Any) -> DeployInfo:
    """A canary deploy of checkout; ``changes`` override any field."""
    base: dict[str, Any] = {
        "deploy_id": "d-8812",
        "service": "checkout",
        "environment": "production",
        "version": "2.4.1",
        "previous_version": "2.4.0",
        "strategy": "canary",
        "component": "application",
        "regions": ("us-east",),
        "started_at_ms": T0,
    }
    return DeployInfo(**{**base, **changes})


def automatic_command(
    key: str = KEY,
    *,
    reason: str,
    evidence: dict[str, Any],
    deploy: DeployInfo | None = None,
    related: tuple[dict[str, Any], ...] = (),
    rule: str = "error-rate-critical",
) -> Command:
    """The rollback command the daemon writes for a decision, parsed from its Kafka bytes."""
    deploy = deploy or deploy_info()
    decision = Decision(
        at_ms=T0 + 60_000,
        rule=rule,
        action="rollback",
        severity="critical",
        service=deploy.service,
        environment=deploy.environment,
        deploy=deploy,
        regions=deploy.regions,
        reason=reason,
        evidence=evidence,
        related=related,
    )
    records, _ = outputs_for(decision, now_ms=T0 + 61_234, signing_key=key.encode())
    (command,) = [record.value for record in records if record.role == "command"]
    parsed: Command = orjson.loads(command)
    return parsed


def approved_manual_command(key: str = KEY) -> Command:
    """The command an approved manual request writes, with non-ASCII names."""
    request = RollbackRequest(
        id="req-7",
        service="checkout",
        environment="production",
        deploy=deploy_info(deploy_id="d-manual", strategy="blue_green", component="configuration"),
        reason="Zoë: 500s после 2.4.1 — rolling back",
        requested_by="zoë",
        requested_at_ms=T0,
        expires_at_ms=T0 + 1_800_000,
    )
    command = manual_command(
        request, approved_by="jürgen", now_ms=T0 + 5_000, signing_key=key.encode()
    )
    parsed: Command = orjson.loads(command.model_dump_json())
    return parsed


def genuine_commands(key: str = KEY) -> dict[str, Command]:
    """Named commands as the guardian signs them, one per kind of trouble for JSON libraries."""
    return {
        "integral-floats": automatic_command(
            key,
            reason="latency p95 250 ms > 200 ms",
            rule="canary-latency",
            deploy=deploy_info(deploy_id="d-integral-floats"),
            evidence={
                "metric": "latency_p95_ms",
                "observed": 250.0,
                "threshold": 200.0,
                "baseline": 120.0,
                "window_s": 300.0,
                "samples": 41,
            },
        ),
        "tiny-numbers": automatic_command(
            key,
            reason="error rate 0.001% > 0.0001%",
            deploy=deploy_info(deploy_id="d-tiny-numbers"),
            evidence={
                "metric": "error_rate",
                "observed": 1e-05,
                "threshold": 1e-06,
                "baseline": 1.5e-7,
                "window_s": 0.5,
                "samples": 3,
                "smallest": 5e-324,
            },
        ),
        "large-numbers": automatic_command(
            key,
            reason="bytes out 1e21 > 1.2e20",
            deploy=deploy_info(deploy_id="d-large-numbers"),
            evidence={
                "metric": "bytes_out",
                "observed": 1e21,
                "threshold": 1.2345678901234568e20,
                "baseline": 1.7976931348623157e308,
                "window_s": 1e16,
                "samples": 9007199254740991,
                "negative": -123456789.125,
                "negative_zero": -0.0,
            },
        ),
        "non-ascii-reason": automatic_command(
            key,
            reason='ошибка 5xx — café 🚨 "quoted" \\ tab\t bell\u0007 line\u2028sep',
            rule="ошибки-5xx",
            deploy=deploy_info(deploy_id="d-non-ascii-reason"),
            evidence={"metric": "error_rate", "observed": 0.083, "threshold": 0.05},
        ),
        "nested-evidence": automatic_command(
            key,
            reason="canary error rate 8.3% vs stable 0.4%",
            deploy=deploy_info(
                deploy_id="d-nested-evidence",
                strategy="progressive",
                component="database",
                regions=("us-east", "eu-west"),
            ),
            evidence={
                "metric": "error_rate",
                "observed": 0.083,
                "baseline": 0.004,
                "cohorts": {
                    "canary": {"error_rate": 0.083, "p95_ms": 250.0, "regions": ["eu-west"]},
                    "stable": {"error_rate": 0.004, "p95_ms": 118.5, "ok": True, "note": None},
                },
                "series": [1.0, 0.5, 1e-07, -0.0, 100, 3.0e10],
                # U+E000 sorts after U+1F600 by code point, before it by UTF-16 unit.
                "keys": {"\ue000": 1, "\U0001f600": 2, "é": 3, "e": 4, "E": 5, "": 6},
            },
            related=(
                {
                    "at_ms": T0 + 90_000,
                    "rule": "latency-regional",
                    "reason": "latence +25 % en eu-west",
                    "evidence": {"observed": 1.25, "threshold": 1.2},
                },
            ),
        ),
        "manual-approved": approved_manual_command(key),
    }


def _reordered(command: Command) -> Command:
    return dict(reversed(list(command.items())))


def _integral_as_int(command: Command) -> Command:
    evidence = {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in command["evidence"].items()
    }
    return {**command, "evidence": evidence}


def _with(path: tuple[str, ...], value: Any) -> Callable[[Command], Command]:
    def change(command: Command) -> Command:
        changed = json.loads(json.dumps(command))
        target = changed
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return changed  # type: ignore[no-any-return]

    return change


def _signature(value: str | None) -> Callable[[Command], Command]:
    return lambda command: {**command, "signature": value}


def _hex(command: Command, key: str = KEY) -> str:
    return hmac.new(key.encode(), canonical_json(command), hashlib.sha256).hexdigest()


def _variants(genuine: dict[str, Command]) -> list[tuple[str, str, Command, str]]:
    """(name, expect, command, why) for every vector."""
    floats, text, nested = (
        genuine["integral-floats"],
        genuine["non-ascii-reason"],
        genuine["nested-evidence"],
    )
    unsigned = {key: value for key, value in floats.items() if key != "signature"}
    legacy = hmac.new(KEY.encode(), legacy_canonical_json(floats), hashlib.sha256).hexdigest()
    accepted = [(name, command, "signed by the guardian") for name, command in genuine.items()]
    accepted += [
        ("keys-reordered", _reordered(floats), "member order is not signed"),
        ("integral-floats-as-ints", _integral_as_int(floats), "200.0 and 200 are one number"),
    ]
    accent_dropped = text["reason"].replace("é", "e")
    rejected = [
        ("tampered-to-version", _with(("to_version",), "2.3.9")(floats), "changed field"),
        ("tampered-number", _with(("evidence", "observed"), 250.5)(floats), "changed number"),
        ("tampered-reason", _with(("reason",), accent_dropped)(text), "accent dropped"),
        (
            "tampered-nested",
            _with(("evidence", "cohorts", "canary", "p95_ms"), 25.0)(nested),
            "nested change",
        ),
        ("tampered-added-approver", _with(("approved_by",), "mallory")(floats), "null to a name"),
        ("other-key", _signature(sign(unsigned, b"not-the-key"))(floats), "another key"),
        ("no-signature", unsigned, "signature missing"),
        ("null-signature", _signature(None)(floats), "signature null"),
        ("alg-stripped", _signature(_hex(floats))(floats), "bare hex: legacy form, not JCS"),
        ("unknown-alg", _signature("hmac-sha512+jcs:" + _hex(floats))(floats), "unknown scheme"),
        ("legacy-json-dumps", _signature(legacy)(floats), "legacy form: guardian verify accepts"),
    ]
    return [(name, "accept", command, why) for name, command, why in accepted] + [
        (name, "reject", command, why) for name, command, why in rejected
    ]


def build_vectors() -> dict[str, Any]:
    """The content of ``verifiers/vectors.json``."""
    vectors = []
    for name, expect, command, why in _variants(genuine_commands()):
        vectors.append(
            {
                "name": name,
                "expect": expect,
                "why": why,
                "key": KEY,
                "canonical": canonical_json(command).decode(),
                "expected_signature": sign(command, KEY.encode()),
                "command": command,
            }
        )
    return {
        "about": (
            "Rollback commands signed by Rollback Guardian (scheme hmac-sha256+jcs: signature = "
            "'hmac-sha256+jcs:' + hex HMAC-SHA256(key as UTF-8, RFC 8785 JSON of the command "
            "without 'signature')). A verifier must compute 'canonical' from 'command' and "
            "accept exactly the vectors whose expect is 'accept'. "
            f"Generated by tests/verifiers/samples.py; refresh with: {REFRESH}"
        ),
        "vectors": vectors,
    }


def render(vectors: dict[str, Any]) -> str:
    """The file's text: stable, readable, one member per line."""
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def random_commands(seed: int, count: int, key: str = KEY) -> list[Command]:
    """Fresh signed commands with random numbers, text and nested evidence."""
    rng = random.Random(seed)
    alphabet = 'aé€ж—\u0007\n\t"\\/\u2028\U0001f600\ue000 0Z'

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    def number() -> float | int:
        kind = rng.randrange(5)
        if kind == 0:
            return float(rng.randint(-(10**6), 10**6))  # integral floats
        if kind == 1:
            return rng.random() * 10.0 ** rng.randint(-320, -5)  # tiny, down to subnormal
        if kind == 2:
            return rng.random() * 10.0 ** rng.randint(15, 308)  # large
        if kind == 3:
            return rng.randint(-(2**53) + 1, 2**53 - 1)
        return rng.uniform(-1000, 1000)

    commands = []
    for index in range(count):
        nested = {text(): number() for _ in range(rng.randint(0, 4))}
        commands.append(
            automatic_command(
                key,
                reason=f"{text()} {number()}",
                deploy=deploy_info(deploy_id=f"d-rand-{seed}-{index}"),
                evidence={
                    "metric": text(),
                    "observed": number(),
                    "threshold": number(),
                    "baseline": float(number()),
                    "samples": rng.randint(0, 10**6),
                    "nested": nested,
                    "series": [number() for _ in range(rng.randint(0, 4))],
                },
            )
        )
    return commands


def _negated(value: Any) -> Any:
    return -value if isinstance(value, int | float) and value else 1.0


def tamperings(key: str = KEY) -> dict[str, Callable[[Command], Command]]:
    """Changes an attacker could make to any signed command; each must be refused."""

    def evidence(command: Command, **changes: Any) -> Command:
        return {**command, "evidence": {**command["evidence"], **changes}}

    return {
        "to_version": lambda c: {**c, "to_version": f"{c['to_version']}-evil"},
        "reason": lambda c: {**c, "reason": c["reason"] + "é"},
        "number": lambda c: evidence(c, observed=_negated(c["evidence"]["observed"])),
        "nested": lambda c: evidence(c, added={"ж": 1e-05}),
        "other-key": lambda c: {**c, "signature": sign(c, f"not-{key}".encode())},
        "alg-stripped": lambda c: {**c, "signature": _hex(c, key)},
        "no-signature": lambda c: {k: v for k, v in c.items() if k != "signature"},
    }


def main() -> None:
    """Write ``verifiers/vectors.json`` from the current code."""
    VECTORS_FILE.write_text(render(build_vectors()), encoding="utf-8")
    print(f"wrote {VECTORS_FILE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
