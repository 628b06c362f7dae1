"""Schemathesis fuzzes every operation of /openapi.json; no input may produce a 5xx.

The API runs on a real socket in a background thread (schemathesis' ASGI
and WSGI shortcuts do not fit aiohttp), with the request log and outputs in
memory and a deploy known for every service, so generated requests reach
the service rather than stopping at "nothing to roll back".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from guardian.api.openapi import openapi_document
from guardian.api.routes import RollbackRoutes
from guardian.inputs.adapters.webhook import DeployWebhook
from guardian.inputs.records import OutRecord
from guardian.manual.policy import ManualPolicy
from guardian.manual.service import ManualService
from guardian.manual.tokens import TokenFile
from guardian.manual.view import MemoryRequestLog
from guardian.metrics import GuardianMetrics
from tests.support.manual import (
    PEOPLE,
    Clock,
    RecordingWriter,
    auth,
    make_deploy,
    serve_in_thread,
    token_of,
    write_tokens,
)

schema = schemathesis.openapi.from_dict(openapi_document())


class _DeployTopic:
    """The webhook's Kafka writer, faked at its ``EventSink`` protocol: takes everything."""

    ready = True

    async def write(self, records: Sequence[OutRecord]) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the API served from a background thread for this module."""
    # bob also announces deploys, so generated webhook calls get past the role check.
    people = {**PEOPLE, "bob": (["DevOps Lead", "deployer"], token_of("bob"))}
    path = Path(tmp_path_factory.mktemp("tokens")) / "tokens.yaml"
    tokens = TokenFile(write_tokens(path, people))
    tokens.load()
    service = ManualService(
        MemoryRequestLog(),
        RecordingWriter(),
        lambda svc, env: make_deploy(f"d-{svc}-{env}", service=svc, environment=env),
        policy=ManualPolicy(),
        clock_ms=Clock(),
    )
    app = web.Application()
    RollbackRoutes(service, tokens).install(app)
    # Any timestamp the schema allows (up to 2100) is taken: a clock bound is no schema's.
    DeployWebhook(
        _DeployTopic(), tokens, "deploy.events", GuardianMetrics(), max_future_skew_ms=10**13
    ).install(app)
    with serve_in_thread(app) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case[Any], base_url: str
) -> None:
    """Any request schemathesis derives from the document is answered without a 5xx."""
    response = case.call(base_url=base_url, headers=auth("bob"))
    assert response.status_code < 500, response.text
    # Response conformance is checked too, except negative-data rejection: a mutation of the
    # Authorization header is overwritten by the valid token sent here, so the request that
    # reaches the API is valid and that check would report a false "violating request accepted".
    case.validate_response(response, excluded_checks=[negative_data_rejection])
