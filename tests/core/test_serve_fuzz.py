"""No client input yields a 5xx: schemathesis fuzzes the server's own OpenAPI schema in process
(bounded examples per operation) against the real application on the tiny model."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="module")
def web(tiny_model_dir, tmp_path_factory):
    from aeth.app import Aeth
    from aeth.config import load_config
    from aeth.serving.app import create_app

    home = tmp_path_factory.mktemp("fuzz-home")
    config = load_config([f"home={home}", f"model.default={tiny_model_dir}", "model.threads=1",
                          "generation.max_tokens=4"], None)
    app = Aeth(config)
    yield create_app(app)
    app.close()


def existing_model(case):
    """Half the bodies name a model that exists and end with a user's message (else nearly every one is
    refused before anything is generated); their other fields stay as generated."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str) and len(body["model"]) % 2 == 0:
        body["model"] = "general"
        if isinstance(body.get("messages"), list):
            body["messages"] = [*body["messages"], {"role": "user", "content": "say " + body["model"]}]
    return case


def test_no_input_gets_a_server_error(web):
    schema = schemathesis.openapi.from_asgi("/openapi.json", web)
    failures, statuses = [], []
    operations = [o.ok() for o in schema.get_all_operations()]
    assert {o.path for o in operations} >= {"/v1/chat/completions", "/v1/models", "/v1/feedback", "/health"}
    for op, mode in [(o, m) for o in operations for m in (schemathesis.GenerationMode.POSITIVE,
                                                            schemathesis.GenerationMode.NEGATIVE)]:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=op.as_strategy(mode).map(existing_model))
        def fuzz(case):
            response = case.call()
            statuses.append((case.path, response.status_code))
            if response.status_code >= 500:
                failures.append((case.method, case.path, case.body, response.status_code, response.text[:300]))
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:  # no invalid input exists for an operation without parameters
            assert mode == schemathesis.GenerationMode.NEGATIVE and op.method.upper() == "GET"
        except Exception as e:  # noqa: BLE001  (collect every operation's failures, then report)
            failures.append((op.method, op.path, repr(e)[:500]))
    assert not failures, failures
    chat = {status for path, status in statuses if path == "/v1/chat/completions"}
    assert 200 in chat and 400 in chat, chat  # answered and refused inputs were both generated
