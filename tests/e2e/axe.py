"""axe-core (npm, node_modules/axe-core) inside Playwright: the serious and critical
accessibility violations of the page as it is now."""

from __future__ import annotations

from functools import lru_cache

from playwright.sync_api import Page

from tests.e2e.conftest import REPO


@lru_cache(maxsize=1)
def _axe_source() -> str:
    path = REPO / "node_modules" / "axe-core" / "axe.min.js"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `npm ci` (axe-core is a devDependency)")
    return path.read_text()


def serious_violations(page: Page) -> list[str]:
    """One line per serious/critical violation: rule, impact, help, the first few targets.
    (page.evaluate runs outside the page's CSP, so the strict script-src stays as it is.)"""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source() + "\n;undefined")
    results = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                          targets: v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\\n').slice(1, 2).join(''))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']}: {'; '.join(v['targets'])}" for v in results]
