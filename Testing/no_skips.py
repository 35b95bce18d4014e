"""A skipped test is not a passed test: any skip fails the session.

A missing component (slicer-core, Chromium, a project module) must turn CI red, whatever way a test
skips (an import guard, `pytest.skip`, a skip mark), so the rule is enforced here once, not per file."""
from __future__ import annotations


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; a skipped test is not a passed test "
                            "(is a component missing?)", red=True)
        session.exitstatus = 1
