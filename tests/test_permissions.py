"""Who may do what, written out in full: a change to the permissions table shows here, in review,
as the one line of the grid it changes (``core.permissions``)."""
from __future__ import annotations

import pytest

from feedback_app.core.permissions import PERMISSIONS, ROLES, may

GRID = """
                          citizen clerk reviewer handler admin system
queue.view                   .      x      x        x      x     .
submissions.all_units        .      x      x        .      x     x
identity.view                .      x      x        .      x     .
submission.view              .      x      x        x      x     .
attachment.download          .      x      x        x      x     .
dashboard.view               .      x      x        x      x     .
dashboard.contacts           .      x      x        .      x     .
accept                       .      .      x        .      x     .
reject                       .      .      x        .      x     .
merge                        .      .      x        .      x     .
assign                       .      .      x        .      x     .
answer                       .      .      x        .      x     .
close                        .      .      x        .      x     .
reopen                       .      .      x        .      x     .
follow_up                    x      .      .        .      .     .
rate                         x      .      .        .      .     .
note                         .      x      x        x      x     .
draft_reply                  .      .      x        x      x     .
approve_reply                .      .      x        .      x     .
record_delivery              .      x      x        .      x     .
print_letter                 .      x      x        .      x     .
reveal                       .      .      x        .      x     .
extend                       .      .      x        .      x     .
query_code.reissue           .      x      x        .      .     .
intake.register              .      x      x        .      x     .
mailbox.handle               .      x      x        .      x     .
publication.manage           .      .      x        .      x     .
folders.view                 .      x      x        x      x     .
stats.view                   .      x      x        x      x     .
ledger.export                .      x      x        x      x     x
ledger.contacts              .      .      .        .      x     x
password.change              .      x      x        x      x     .
accounts.manage              .      .      .        .      x     x
units.manage                 .      .      .        .      x     x
calendar.replace             .      .      .        .      x     .
database.upgrade             .      .      .        .      .     x
bulletins.manage             .      .      .        .      .     x
outbox.send                  .      .      .        .      .     x
mailbox.fetch                .      .      .        .      .     x
deadlines.report             .      .      .        .      .     x
audit.verify                 .      .      .        .      .     x
"""


def _grid() -> dict[str, frozenset[str]]:
    header, *rows = GRID.strip("\n").splitlines()
    roles = header.split()
    table = {}
    for row in rows:
        action, *cells = row.split()
        assert len(cells) == len(roles), action
        table[action] = frozenset(role for role, cell in zip(roles, cells, strict=True) if cell == "x")
    return table


def test_the_table_is_the_grid():
    assert tuple(GRID.strip("\n").splitlines()[0].split()) == ROLES
    assert _grid() == PERMISSIONS


def test_an_action_missing_from_the_table_is_an_error_not_a_no():
    with pytest.raises(KeyError):
        may("admin", "no.such.action")
    assert not may(None, "queue.view")
