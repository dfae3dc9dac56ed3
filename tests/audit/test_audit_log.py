"""The audit log: append-only, each entry chained to the one before by a keyed hash."""
import dataclasses
import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from feedback_app.audit.log import record, verify
from feedback_app.core.models import AuditEntry


def write(session, settings, n=3):
    for i in range(n):
        record(session, settings, action="login", actor=f"user{i}", target=f"HP2026-00000{i}",
               client="127.0.0.1", details={"i": i, "说明": "测试"})
    session.commit()


def test_entries_chain_and_verify(session, settings):
    write(session, settings, 5)
    entries = session.query(AuditEntry).order_by(AuditEntry.id).all()
    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    result = verify(session, settings)
    assert result.broken_id is None and result.checked == 5


def test_database_refuses_update_and_delete(session, settings):
    write(session, settings, 2)
    for statement in ("UPDATE audit_entry SET actor = 'mallory' WHERE id = 1", "DELETE FROM audit_entry WHERE id = 2"):
        with pytest.raises(DatabaseError):
            session.execute(text(statement))
            session.flush()
        session.rollback()


def _tamper(session, statements):
    """Edit the log behind the triggers' back, as someone with raw database access could."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("DROP TRIGGER audit_entry_no_update"))
        session.execute(text("DROP TRIGGER audit_entry_no_delete"))
    else:
        session.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
    for s in statements:
        session.execute(text(s))
    session.commit()


@pytest.mark.parametrize("statements, broken", [
    (["UPDATE audit_entry SET actor = 'mallory' WHERE id = 2"], 2),
    (["UPDATE audit_entry SET details = '{}' WHERE id = 3"], 3),
    (["DELETE FROM audit_entry WHERE id = 2"], 2),
    (["DELETE FROM audit_entry WHERE id = 4"], 4),
])
def test_verify_names_the_first_broken_entry(session, settings, statements, broken):
    write(session, settings, 4)
    _tamper(session, statements)
    result = verify(session, settings)
    assert result.broken_id == broken and result.reason


def test_another_key_cannot_forge_the_chain(session, settings):
    write(session, settings, 2)
    other = dataclasses.replace(settings, audit_key="someone-else")
    assert verify(session, other).broken_id == 1


def test_cli_verify_exit_codes(app, session, settings):
    write(session, settings, 3)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "共 3 条" in ok.output
    _tamper(session, ["UPDATE audit_entry SET target = 'HP2026-999999' WHERE id = 2"])
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1 and "第 2 条" in bad.output
