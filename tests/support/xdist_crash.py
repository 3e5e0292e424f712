"""A pytest plugin: when a pytest-xdist worker process dies mid-test (a segfault in a C library,
the OOM killer), the run goes on instead of hanging, and the test it died in runs once more.

- pytest-xdist 3.8's file scheduler (``--dist loadfile``) puts back on its queue every file the
  dead worker was given, finished ones too; a finished file goes out again as an empty unit of
  work that never completes, and the run waits forever (pytest-xdist issues 1323 and 1378). A
  CI run hung so after a worker died in libpq's connect. ``LoadFileAfterCrash`` puts back only
  the files with tests still to run.
- The test a worker died in goes back with its file (xdist's own choice for file scheduling), so
  the new worker runs it again. Its first crash is reported as a rerun ("R"), not a failure, and
  listed at the end of the run; a second crash of the same test fails the run. A test's own
  failures are never retried.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

#: crashes seen per test (in the controller process)
_crashes: dict[str, int] = {}


class LoadFileAfterCrash(LoadFileScheduling):
    def remove_node(self, node: WorkerController) -> str | None:
        workload = self.assigned_work.get(node)
        if workload is not None:
            for scope in [scope for scope, unit in workload.items() if all(unit.values())]:
                del workload[scope]  # finished: not put back as an empty unit
        return super().remove_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    if config.getvalue("dist") == "loadfile":
        return LoadFileAfterCrash(config, log)
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    _crashes[crashitem] = _crashes.get(crashitem, 0) + 1
    if _crashes[crashitem] == 1:
        report.outcome = "rerun"  # type: ignore[assignment]  # pytest-rerunfailures' outcome


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]
        return "rerun", "R", "RERUN"
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _crashes:
        return
    terminalreporter.section("worker crashes", sep="-", red=True, bold=True)
    for nodeid, count in sorted(_crashes.items()):
        outcome = "ran again on a new worker" if count == 1 else "failed"
        terminalreporter.line(f"{nodeid}: its worker died {count} time(s); {outcome}")
