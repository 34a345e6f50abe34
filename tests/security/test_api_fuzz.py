"""Schemathesis sends every operation in /api/schema/ generated requests, valid and invalid:
none may answer a 5xx.

Its coverage phase (deterministic edge cases for every parameter and field)
runs whole; the fuzzing phase adds a few seeded examples per operation and mode.

The requests come from a real owner's token, and most name this test's own
project, run, model, dataset and job, so they get past authentication and
the lookups into the code behind them. Each runs in a savepoint that is
rolled back, so one request's writes (a deleted project) never hide what the
next one would reach. The run is bounded and seeded: the same requests on
every run, about a minute on a small machine.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import strategies as st
from schemathesis import GenerationMode

from accounts import services as account_services

pytestmark = pytest.mark.django_db

EXAMPLES_PER_MODE = 8
SEED = 20240610


@pytest.fixture
def wsgi_app():
    # As Django's test client does: a request must not close the test's connection
    # (and with it the transaction that holds this test's data).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield WSGIHandler()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _path_values(world) -> dict[str, str]:
    return {"slug": world.project.slug, "run_id": str(world.run.pk), "ref": "1", "alias": "staging",
            "version_id": str(world.dataset_version_id), "rule_id": str(world.rule_id),
            "job_id": str(world.job_id), "token_id": str(world.token_id), "sweep_id": str(world.sweep_id),
            "username": world.member, "key": "team", "path": "model/model.skops"}


def test_no_generated_request_gets_a_server_error(world, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    values = _path_values(world)
    _, raw = account_services.api_token_create(user=world.client.user, name="fuzz")
    token = f"Bearer {raw}"
    failures: list[str] = []
    operations = 0

    def send_one(case) -> None:
        with transaction.atomic():
            response = case.call(headers={"Authorization": token})
            transaction.set_rollback(True)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.as_curl_command()}\n  {response.text[:300]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = {p.name for p in operation.path_parameters}

        def real_path(case, use_real: bool, operation=operation):
            if use_real and case.path_parameters:
                for name in list(case.path_parameters):
                    if name == "name":
                        case.path_parameters[name] = world.dataset if "/datasets/" in operation.path \
                            else world.model
                    elif name in values:
                        case.path_parameters[name] = values[name]
            return case

        # The coverage phase: schemathesis's deterministic edge cases (wrong types, bounds,
        # missing fields, odd strings) for every parameter and body field, each sent with this
        # test's real objects in the path so that it reaches the code behind the lookups.
        generation = schema.config.generation_for(operation=operation, phase="coverage")
        for case in schema.iter_coverage_cases(operation, generation_config=generation,
                                               generation_modes=list(GenerationMode)):
            send_one(real_path(case, True))

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = st.builds(real_path, operation.as_strategy(generation_mode=mode),
                                 st.booleans() if names else st.just(False))

            @hypothesis.settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                                 derandomize=False, suppress_health_check=list(hypothesis.HealthCheck),
                                 phases=[hypothesis.Phase.generate])
            @hypothesis.seed(SEED)
            @hypothesis.given(case=strategy)
            def send(case):
                send_one(case)

            send()

    assert operations > 40
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:30])
