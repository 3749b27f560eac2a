"""Qt's own autotests (qt_tst_qsharedmemory.py, qt_tst_qsystemsemaphore.py) on all four
implementations, each in a pytest process of its own, and the README table of what they did.

A process loads one Qt binding at most (PyQt6 and PySide6 ship different Qt 6 libraries), so
each implementation's run is ``python -m pytest <the translated Qt 5.15 and/or Qt 6 classes>``
with ``QSHM_QT_IMPL`` set, ``PYTHONSAFEPATH=1`` and a ``TMPDIR`` of its own; its JUnit XML says
what each test did.  The run's leak guard (tests/conftest.py) checks every translated test in
that process, and this one checks the process itself.  Every test must pass, except Qt's own
QSKIPs and the rows where qshm_compat differs from Qt by design.  Finally the table built from
these runs must be the one in README.md (``python tests/qt_autotests_table.py --update``
rewrites it from a fresh run).
"""

from __future__ import annotations

import os
from typing import Dict, List

import pytest

import peers
import qt_autotests_table as table
import qtimpl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: What this session's runs saw, by implementation (filled by test_qt_autotests_on).
RESULTS: Dict[str, List[table.Case]] = {}


def run_impl(impl: str) -> List[table.Case]:
    """The translated Qt tests of ``impl``'s branch(es), run in a pytest process of its own."""
    cases, code, out, pid = table.run(impl)
    peers.STARTED_PIDS.add(pid)  # this run's leak guard also looks at what that process made
    if cases is None:
        pytest.fail(f"{impl}: no JUnit XML; exit status {code}:\n{out[-6000:]}")
    bad = [c for c in cases if c.outcome in ("fails", "skipped")]
    assert not bad and code == 0, (
        f"{impl}: exit status {code}; failed or skipped without a Qt QSKIP:\n"
        + "\n".join(f"  {c.nodeid}: {c.detail}" for c in bad) + "\n" + out[-6000:])
    assert len(cases) >= table.MIN_CASES[impl], f"{impl}: only {len(cases)} tests ran"
    return cases


@pytest.mark.parametrize("impl", qtimpl.IMPLS)
def test_qt_autotests_on(impl: str) -> None:
    """Every translated Qt test passes on ``impl`` (Qt's QSKIPs and the by-design rows aside)."""
    cases = run_impl(impl)
    RESULTS[impl] = cases
    if impl != "qshm_compat":
        return
    by_design = [c for c in cases if c.outcome == "differs by design"]
    assert by_design, "readOnly() should be reported as differing by design on qshm_compat"


def test_readme_table_is_what_the_runs_saw() -> None:
    """README.md's table of Qt test functions x implementations is the one these runs give."""
    for impl in qtimpl.IMPLS:
        if impl not in RESULTS:  # run apart from the tests above (pytest -n, -k)
            RESULTS[impl] = run_impl(impl)
    seen = table.render(RESULTS)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert table.readme_section(readme) == seen, (
        "README.md's Qt autotest table differs from this run; "
        "`python tests/qt_autotests_table.py --update` rewrites it. This run:\n" + seen)
