"""The feedback-app command: names operators' scripts rely on."""
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from feedback_app.core.models import Bulletin, BulletinItem
from tests.conftest import SEED, SEED_SLUG

ROOT = Path(__file__).resolve().parent.parent


def test_bulletin_import_is_idempotent_and_listed(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["bulletin", "import", str(SEED)])
    assert first.exit_code == 0, first.output
    assert "已导入" in first.output
    second = runner.invoke(args=["bulletin", "import", str(SEED)])
    assert second.exit_code == 0 and "未变化" in second.output
    assert session.scalar(select(func.count()).select_from(Bulletin)) == 1
    assert session.scalar(select(func.count()).select_from(BulletinItem)) == 14
    listing = runner.invoke(args=["bulletin", "list"])
    assert SEED_SLUG in listing.output and "14项" in listing.output


def test_bulletin_import_with_slug(app, session):
    result = app.test_cli_runner().invoke(args=["bulletin", "import", str(SEED), "--slug", "hp-2025"])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Bulletin.slug)) == "hp-2025"


def test_unreadable_bulletin_names_the_line_and_stores_nothing(app, session, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(SEED.read_text(encoding="utf-8").replace("5.企业获得感", "7.企业获得感"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["bulletin", "import", str(bad)])
    assert result.exit_code == 1
    assert "导入失败" in result.output and "行" in result.output
    assert session.scalar(select(func.count()).select_from(Bulletin)) == 0


def test_feedback_app_command_and_flask_app_option_agree(tmp_path, database_url):
    env = {**os.environ, "FEEDBACK_ENV": "development", "FEEDBACK_INSTANCE_PATH": str(tmp_path),
           "FEEDBACK_DATABASE_URL": database_url}
    bindir = Path(sys.executable).parent
    subprocess.run([bindir / "feedback-app", "db", "upgrade"], env=env, check=True, capture_output=True)
    out = subprocess.run([bindir / "feedback-app", "bulletin", "import"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert SEED_SLUG in out
    listed = subprocess.run([bindir / "flask", "--app", "feedback_app.app", "bulletin", "list"], env=env,
                            check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert SEED_SLUG in listed
    helptext = subprocess.run([bindir / "feedback-app", "--help"], env=env, check=True,
                              capture_output=True, text=True).stdout
    for command in ("run", "db", "bulletin"):
        assert command in helptext


def _our_commands(app):
    """Every command of the groups ``create_app`` adds (Flask's own run, shell, routes are not ours)."""
    from feedback_app.app import COMMANDS

    for group in COMMANDS:
        assert app.cli.get_command(None, group.name) is group
        for name, command in group.commands.items():
            yield f"{group.name} {name}", command


def test_every_command_asks_the_permissions_table(app, monkeypatch):
    """Each command declares the action it takes (``cli.common.needs``); the table must let the operator
    take it, and a command whose action the table withholds from the operator refuses to run."""
    from feedback_app.core import permissions

    commands = dict(_our_commands(app))
    assert len(commands) >= 19
    for name, command in commands.items():
        permission = getattr(command.callback, "permission", None)
        assert permission in permissions.PERMISSIONS, f"feedback-app {name} declares no action of the table"
        assert permissions.may(permissions.SYSTEM, permission), name
    monkeypatch.setitem(permissions.PERMISSIONS, "bulletins.manage", frozenset({"admin"}))
    refused = app.test_cli_runner().invoke(args=["bulletin", "list"])
    assert refused.exit_code == 1 and "命令行不能执行此操作（bulletins.manage）" in refused.output
