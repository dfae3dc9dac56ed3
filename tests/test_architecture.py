"""The house's shape, as pyproject.toml states it: every page and command group is under its contracts."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from feedback_app.app import BLUEPRINTS, COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _contract(name_starts: str) -> dict:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_starts))


def test_every_page_is_under_the_pages_contract():
    modules = {bp.import_name for bp in BLUEPRINTS}
    assert modules == set(_contract("Pages never import one another")["modules"])


def test_every_command_group_is_under_the_commands_contract():
    modules = {group.commands[next(iter(group.commands))].callback.__module__ for group in COMMANDS}
    assert modules == set(_contract("Command groups never import one another")["modules"])


def test_the_import_contracts_hold():
    """What .ci/run checks, here too, so that a broken layer shows in the suite as well."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_form_of_the_site_fails_when_its_request_was_refused():
    """A form built straight on FlaskForm would validate a request CSRFProtect refused for another
    reason than its token (``web.csrf``); every form of the site derives from ``web.forms.Form``."""
    import pkgutil
    from importlib import import_module

    from flask_wtf import FlaskForm

    import feedback_app.web
    from feedback_app.web.forms import Form

    for module in pkgutil.walk_packages(feedback_app.web.__path__, "feedback_app.web."):
        import_module(module.name)
    ours = {form for form in _subclasses(FlaskForm) if form.__module__.startswith("feedback_app.")}
    assert len(ours) >= 10
    assert {form for form in ours if not issubclass(form, Form)} == set()


def test_no_private_parts_of_the_dependencies():
    """Werkzeug's private multipart parser and SQLAlchemy's compiler internals change without notice."""
    private = ("_parse_multipart", "sqlalchemy.sql.compiler", "construct_params(", "._compiler", "sqlalchemy.sql.dml")
    found = [(path.relative_to(ROOT), word) for path in (ROOT / "feedback_app").rglob("*.py")
             for word in private if word in path.read_text(encoding="utf-8")]
    assert found == []
    assert not (ROOT / "feedback_app" / "bench").exists()
