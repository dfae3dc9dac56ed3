"""``make bench``: benchmark suites (not tests), run by ``python -m bench [SUITE ...]``.

A suite is a module of this package that defines ``run(args) -> dict``; it is found by that alone,
so a new suite is a new module and nothing else. ``args`` is the parsed command line below (a suite
reads what it needs with ``getattr`` and its own defaults); a suite with options of its own defines
``add_arguments(group)`` and adds them to that argparse group. The dict a suite returns is written
to ``bench-results/<suite>.json``; ``"ok": False`` in it marks a run whose figures cannot be trusted
(errors, lost data), which makes the command exit non-zero. Missed performance goals do not: they
are reported, not enforced.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from feedback_app.core.config import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "bench-results"


def suites() -> tuple[dict[str, ModuleType], dict[str, str]]:
    """Every suite of this package by name, in name order; and the modules that failed to import."""
    found: dict[str, ModuleType] = {}
    broken: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:
            broken[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return found, broken


def parser(available: dict[str, ModuleType]) -> argparse.ArgumentParser:
    names = list(available)
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run benchmark suites and write bench-results/<suite>.json.",
    )
    p.add_argument("suites", nargs="*", metavar="SUITE", help=f"suites to run (default: all of {', '.join(names)})")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each scenario (default 2)")
    p.add_argument("--rounds", type=int, default=5,
                   help="measured windows per scenario, taking turns with the other scenarios (default 5)")
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections (default 8)")
    p.add_argument("--max-ops", type=int, default=1_000_000, help="upper bound of operations per scenario")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON results")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directories (databases, logs)")
    for name, module in available.items():
        add_arguments = getattr(module, "add_arguments", None)
        if callable(add_arguments):
            add_arguments(p.add_argument_group(f"{name} suite"))
    return p


def main(argv: list[str] | None = None) -> int:
    available, broken = suites()
    args = parser(available).parse_args(argv)
    for name, error in broken.items():
        print(f"module {__name__}.{name} cannot be imported, skipped: {error}", file=sys.stderr)
    if args.list:
        for name, module in available.items():
            print(f"{name}\t{(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}")
        return 1 if broken else 0
    if any(s in broken for s in args.suites):
        return 1
    unknown = [s for s in args.suites if s not in available]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.connections <= 256
            and 1 <= args.rounds <= 100 and args.max_ops >= 1):
        print("--duration must be in (0, 600], --warmup in [0, 60], --connections in [1, 256], "
              "--rounds in [1, 100], --max-ops at least 1", file=sys.stderr)
        return 2
    failed: list[str] = [] if args.suites else list(broken)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.suites or list(available):
        started = time.monotonic()
        try:
            result = available[name].run(args)
        except KeyboardInterrupt:
            raise
        except Exception:
            traceback.print_exc()
            print(f"{name}: FAILED", file=sys.stderr)
            failed.append(name)
            continue
        result.setdefault("suite", name)
        result.setdefault("elapsed_s", round(time.monotonic() - started, 1))
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"{name}: results written to {_shown(path)} ({result['elapsed_s']} s)\n", flush=True)
        if result.get("ok") is False:
            failed.append(name)
    if failed:
        print(f"suites without trustworthy results: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
