"""axe-core for the browser tests: the desktop context staff work in, the check, and its report."""
from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

DESKTOP = dict(viewport={"width": 1280, "height": 900}, device_scale_factor=1, is_mobile=False, has_touch=False,
               locale="zh-CN", timezone_id="Asia/Shanghai")


def axe_violations(page: Page) -> list[dict]:
    page.wait_for_load_state()  # colour contrast needs the style sheets
    result = Axe().run(page).response
    assert result["passes"], f"axe-core checked nothing on {page.url}"
    return result["violations"]


def describe(found: dict[str, list[dict]], impacts=None) -> str:
    """One line per violation, by page; only the given impacts when ``impacts`` is set."""
    lines = []
    for name, violations in found.items():
        for v in violations:
            if impacts and v["impact"] not in impacts:
                continue
            targets = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"])
            lines.append(f"[{name}] {v['id']} ({v['impact']}): {v['help']} -> {targets}")
    return "\n".join(lines)
