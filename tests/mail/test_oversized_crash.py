"""``mail fetch`` and ``mail import`` killed with SIGKILL while keeping a message over the size limit:

- after its file was written, before its row was committed: a temporary file is left, and no row. The
  next run stores the message afresh and leaves that file alone while it is young (it could be another
  run's, about to be committed); a run once it is stale removes it.
- after its row was committed, before its file was put in place: the next run puts it in place.

Either way no file is ever in its place without its row, and none is left behind for good.
"""
from __future__ import annotations

import contextlib
import os

import pytest

from feedback_app.core.database import make_engine
from feedback_app.intake.attachments import path_of
from feedback_app.mailbox.original import STALE_SECONDS
from tests.conftest import make_settings
from tests.mail.oversized import (
    COMMAND,
    LIMIT,
    age,
    append,
    big_message,
    inbound_rows,
    kept_files,
    kill_when,
    partial_files,
    run,
    sha256,
)

PAUSE = "0.5"  # seconds the command waits between its steps, so that it can be killed between them


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(tmp_path):
    return tmp_path / "instance" / "attachments"


@pytest.fixture(params=["fetch", "import"])
def channel(request, database_url, tmp_path, bulletin):
    """(the command, its environment, the message) for a message over the size limit waiting in the
    IMAP mailbox (a real Dovecot) or in an .eml file."""
    raw = big_message(300 * 1024, f"crash-{request.param}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env.update({"FEEDBACK_ENV": "test", "FEEDBACK_DATABASE_URL": database_url,
                "FEEDBACK_SECRET_KEY": "test-secret-key", "FEEDBACK_INSTANCE_PATH": str(tmp_path / "instance"),
                "FEEDBACK_MAIL_MAX_BYTES": str(LIMIT), "FEEDBACK_LOG_LEVEL": "WARNING"})
    if request.param == "fetch":
        dovecot = request.getfixturevalue("dovecot")
        env.update(dovecot.env())
        append(make_settings(database_url, tmp_path, **dovecot.settings_overrides()), raw)
        return [*COMMAND, "fetch"], env, raw
    (tmp_path / "big.eml").write_bytes(raw)
    return [*COMMAND, "import", str(tmp_path / "big.eml")], env, raw


def _sizes(paths) -> list[int]:
    sizes = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # put in place meanwhile
            sizes.append(path.stat().st_size)
    return sizes


@pytest.mark.timeout(180)
def test_killed_before_the_row_leaves_a_temporary_file_that_a_later_run_removes(channel, engine, store):
    command, env, raw = channel
    kill_when(command, {**env, "FEEDBACK_MAIL_TEST_PAUSE": PAUSE},
              lambda: _sizes(partial_files(store)) == [len(raw)] and not inbound_rows(engine))
    [left] = partial_files(store)
    assert left.read_bytes() == raw and inbound_rows(engine) == [] and kept_files(store) == []

    run(command, env)  # stores the message afresh; the young temporary file may be another run's: left alone
    [row] = inbound_rows(engine)
    assert (row["status"], row["sha256"], row["original_size"]) == ("quarantined", sha256(raw), len(raw))
    assert kept_files(store) == [path_of(store, row["original_name"])]
    assert path_of(store, row["original_name"]).read_bytes() == raw
    assert partial_files(store) == [left]

    age(left, STALE_SECONDS + 60)
    run(command, env)  # nothing new to store; the stale file goes
    assert partial_files(store) == [] and kept_files(store) == [path_of(store, row["original_name"])]
    assert inbound_rows(engine) == [row]


@pytest.mark.timeout(180)
def test_killed_after_the_row_the_next_run_puts_the_file_in_place(channel, engine, store):
    command, env, raw = channel

    def committed_not_placed() -> bool:
        rows = inbound_rows(engine)
        return bool(rows) and bool(partial_files(store)) and not kept_files(store)

    kill_when(command, {**env, "FEEDBACK_MAIL_TEST_PAUSE": PAUSE}, committed_not_placed)
    [row] = inbound_rows(engine)
    assert not path_of(store, row["original_name"]).exists() and len(partial_files(store)) == 1

    run(command, env)
    assert inbound_rows(engine)[0]["id"] == row["id"] and len(inbound_rows(engine)) == 1
    assert path_of(store, row["original_name"]).read_bytes() == raw and partial_files(store) == []
    assert kept_files(store) == [path_of(store, row["original_name"])]
