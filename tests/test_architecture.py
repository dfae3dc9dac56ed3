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
