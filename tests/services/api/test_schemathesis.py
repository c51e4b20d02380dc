"""Requests generated from the live OpenAPI schema, valid and invalid, find no server
error, and every answer has a documented status, content type and body.

Each operation gets its own Hypothesis run, driven here rather than through
schemathesis' pytest plugin, which does not load under this pytest.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.services.api.conftest import LiveApi
from tests.services.api.seed import TOKENS

pytestmark = [pytest.mark.slow]
EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _operations(live_api: LiveApi) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{live_api.url}/api/v1/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _exercise(operation: schemathesis.APIOperation, mode: GenerationMode, role: str) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters (or only enums) has no invalid request to make.
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_as_documented(live_api: LiveApi, mode: GenerationMode) -> None:
    operations = _operations(live_api)
    assert len(operations) >= 12
    for operation in operations:
        # The admin token reaches every route; the roles themselves are in test_auth_matrix.
        _exercise(operation, mode, "admin")
