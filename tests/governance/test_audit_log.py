import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from core.audit import audit_record
from governance.audit import audit_chain_verify, audit_event_hash
from governance.models import AUDIT_GENESIS_HASH, AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")


def record(n: int, user=None, project_id=None) -> list[AuditEvent]:
    for i in range(n):
        audit_record(action="test.happened", actor=user, object_type="tests.Thing", object_id=i,
                     project_id=project_id, before={"i": i}, after={"i": i + 1, "note": "ünïcode"})
    return list(AuditEvent.objects.filter(action="test.happened").order_by("id"))


def verify_output() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


def test_each_event_is_chained_to_the_one_before_and_the_chain_verifies():
    user = UserFactory()
    events = record(3, user=user, project_id=7)
    earlier = AuditEvent.objects.filter(id__lt=events[0].id).order_by("-id").first()
    assert events[0].prev_hash == (earlier.hash if earlier else AUDIT_GENESIS_HASH)
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    for event in events:
        event.refresh_from_db()
        assert event.hash == audit_event_hash(event)
    assert (events[0].actor_id, events[0].actor_name, events[0].project_id) == (user.pk, user.username, 7)
    total = AuditEvent.objects.count()
    assert f"{total} event(s) verified" in verify_output()


def test_an_event_commits_or_rolls_back_with_the_change_it_records():
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        record(1)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == before


@postgres_only
def test_the_database_refuses_update_and_delete():
    event = record(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == "test.happened"


def _drop_trigger():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Inside the test's transaction: rolled back, and the trigger with it, when the test ends.
            cursor.execute("DROP TRIGGER governance_auditevent_append_only ON governance_auditevent")


def test_a_row_edited_with_raw_sql_is_caught_by_verify_audit_log():
    events = record(4)
    assert audit_chain_verify().ok
    _drop_trigger()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET actor_name = %s WHERE id = %s",
                       ["mallory", events[2].pk])
    with pytest.raises(CommandError) as caught:
        verify_output()
    assert caught.value.returncode == 1
    assert f"broken at event {events[2].pk}" in str(caught.value)
    assert "changed after it was written" in str(caught.value)


def test_a_row_removed_with_raw_sql_is_caught_at_the_next_one():
    events = record(3)
    _drop_trigger()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE id = %s", [events[1].pk])
    report = audit_chain_verify()
    assert not report.ok
    assert report.broken.event_id == events[2].pk
    with pytest.raises(CommandError, match=f"broken at event {events[2].pk}"):
        verify_output()


def test_a_rehashed_row_still_breaks_the_link_after_it():
    events = record(3)
    _drop_trigger()
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.after = {"i": 999}
    forged_hash = audit_event_hash(forged)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET after = %s, hash = %s WHERE id = %s",
                       ['{"i": 999}', forged_hash, events[1].pk])
    assert audit_chain_verify().broken.event_id == events[2].pk


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_appends_from_concurrent_transactions_never_fork_the_chain():
    start = threading.Barrier(4)
    errors = []

    def append(worker: int) -> None:
        try:
            start.wait()
            for i in range(15):
                with transaction.atomic():
                    audit_record(action="test.concurrent", actor=None, object_type="tests.Thing",
                                 object_id=f"{worker}-{i}")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 60
    assert len(set(AuditEvent.objects.values_list("prev_hash", flat=True))) == AuditEvent.objects.count()
    assert audit_chain_verify().ok


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_command_exits_1_naming_the_broken_event_and_0_when_intact(settings):
    import os
    import subprocess
    import sys
    from pathlib import Path

    events = record(3)
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    command = [sys.executable, "manage.py", "verify_audit_log"]
    root = Path(__file__).resolve().parents[2]
    intact = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0, intact.stderr
    assert "3 event(s) verified" in intact.stdout
    trigger = "governance_auditevent_append_only"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE governance_auditevent DISABLE TRIGGER {trigger}")
        try:
            cursor.execute("UPDATE governance_auditevent SET object_id = 'x' WHERE id = %s", [events[1].pk])
        finally:
            cursor.execute(f"ALTER TABLE governance_auditevent ENABLE TRIGGER {trigger}")
    broken = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert f"broken at event {events[1].pk}" in broken.stderr


def _test_database_url() -> str:
    config = connection.settings_dict
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    return (f"postgres://{config['USER']}{password}@{config['HOST'] or 'localhost'}:{config['PORT'] or 5432}"
            f"/{config['NAME']}")
