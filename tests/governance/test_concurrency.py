"""Two reviewers approving at the same moment move the alias once (real PostgreSQL row locks)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from governance import promotions
from governance.models import Policy, PromotionRequest, PromotionStatus
from registry.models import AliasEvent, ModelAlias
from tests.governance.conftest import make_version

pytestmark = pytest.mark.django_db(transaction=True)


def _approve_together(request_id: int, reviewers) -> list:
    barrier = threading.Barrier(len(reviewers))
    outcomes: list = [None] * len(reviewers)

    def approve(i: int, user) -> None:
        try:
            barrier.wait(timeout=10)
            request = PromotionRequest.objects.get(pk=request_id)
            promotions.promotion_review(request=request, user=user, decision="approve", comment="")
            outcomes[i] = "ok"
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread met
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(i, u)) for i, u in enumerate(reviewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("required", [1, 2])
def test_two_concurrent_approvals_move_the_alias_once(project, people, model, required):
    if connection.vendor != "postgresql":
        pytest.skip("Row locks are what this tests; SQLite serialises whole-database writes instead.")
    Policy.objects.create(project=project, approvals_required=required)
    version = make_version(model, author=people["author"])
    request = promotions.promotion_request_create(model=model, version=version, alias="champion",
                                                  justification="Ship it.", user=people["requester"])
    outcomes = _approve_together(request.pk, [people["alice"], people["bob"]])
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    assert AliasEvent.objects.filter(model=model, alias="champion").count() == 1
    assert ModelAlias.objects.get(model=model, name="champion").version_id == version.pk
    if required == 2:
        assert outcomes == ["ok", "ok"]
        assert request.reviews.count() == 2
    else:
        # The second approval arrives at a decided request and is refused, not counted twice.
        assert sorted(str(type(o).__name__) for o in outcomes) == ["Conflict", "str"]
