"""schemathesis against the OpenAPI document: generated requests never meet a server error.

Every operation of ``/api/v1/openapi.json`` gets generated requests (valid and invalid bodies,
parameters and ids) with a live token; a 5xx answer fails the test with the request that caused it.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok

from engine.people import api_tokens
from engine.storage.db import Database
from tests.conftest import ActorOf

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def test_generated_requests_never_meet_a_server_error(
    app: Flask, db: Database, actor: ActorOf
) -> None:
    headers = {"Authorization": f"Bearer {api_tokens.create(db, actor('ddm1'), 'schemathesis')}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), [r.err() for r in results if isinstance(r, Err)]
    assert len(operations) >= 5

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def requests_of(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        requests_of()
