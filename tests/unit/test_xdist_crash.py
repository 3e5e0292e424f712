"""``tests.support.xdist_crash``: a pytest run whose worker process dies mid-test ends instead of
hanging, runs that test once more, and fails it if it kills its worker again. Each case runs a
small suite of its own in a pytest subprocess with two xdist workers, as CI does. Without the
plugin the first case fails (its crash is a failure) or hangs (xdist 3.8; the timeout fails it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_QUICK = "import time\ndef test_x1():\n    time.sleep(0.2)\ndef test_x2():\n    pass\n"
# the first test of the fifth file kills its worker (the first time only, unless told always),
# after that worker finished files of its own: xdist 3.8 put those back as empty units and hung
_CRASHING = """import os, signal
from pathlib import Path

def test_crash():
    mark = Path(os.environ["CRASH_MARK"])
    if os.environ.get("CRASH_ALWAYS") or not mark.exists():
        mark.touch()
        os.kill(os.getpid(), signal.SIGSEGV)

def test_after():
    pass
"""


def _suite(folder: Path) -> None:
    for i in (1, 2, 3, 4, 6, 7):
        (folder / f"test_{i}.py").write_text(_QUICK)
    (folder / "test_5.py").write_text(_CRASHING)
    (folder / "conftest.py").write_text('pytest_plugins = ["tests.support.xdist_crash"]\n')


def _run(folder: Path, *, always: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_MARK": str(folder / "crashed")}
    env.pop("CRASH_ALWAYS", None)
    if always:
        env["CRASH_ALWAYS"] = "1"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark"]
    argv += ["-n", "2", "--dist", "loadfile", "--max-worker-restart", "3", "-o", "addopts="]
    return subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_worker_that_dies_once_costs_a_rerun_not_the_run(tmp_path: Path) -> None:
    _suite(tmp_path)
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "14 passed, 1 rerun" in done.stdout
    assert "test_5.py::test_crash: its worker died 1 time(s); ran again" in done.stdout


def test_a_test_that_kills_its_worker_every_time_fails_the_run(tmp_path: Path) -> None:
    _suite(tmp_path)
    done = _run(tmp_path, always=True)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "FAILED test_5.py::test_crash" in done.stdout
