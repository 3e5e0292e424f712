"""``python -m newsletter ...`` for tests, forked from a process that has imported it already.

Each CLI test used to start a fresh interpreter that imported the whole package (SQLModel,
Alembic, Celery, mjml...): 1-3 s a call on a busy two-core machine, a few hundred calls a run.
Here one helper process per test process (the "zygote") imports ``newsletter.cli`` once and
forks a child per call. The child is still a process of its own, as ``python -m newsletter`` is:
it gets the call's working folder, environment, stdin, stdout and stderr (files, as with
``capture_output``), runs the package's ``__main__`` and exits with its exit status; the
zygote's state never changes (no settings read, no engine made, no thread started in it).

``run`` answers like ``subprocess.run(..., capture_output=True, text=True)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_lock = threading.Lock()
_zygote: subprocess.Popen[str] | None = None


def _start() -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.cli_fork"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )


def run(
    args: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    input: str | None = None,  # subprocess.run's own name
    timeout: float = 120,
    stdout: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m newsletter *args`` in ``cwd`` with exactly ``env``; output captured (also
    written to ``stdout`` as it comes, when given: a test can watch a ``--follow``)."""
    global _zygote
    with tempfile.TemporaryDirectory(prefix="nl-cli-") as scratch:
        files = {name: str(Path(scratch) / name) for name in ("stdin", "stdout", "stderr")}
        if stdout is not None:
            files["stdout"] = str(stdout)
        Path(files["stdin"]).write_text(input or "", encoding="utf-8")
        request = {"args": args, "cwd": str(cwd), "env": env, "timeout": timeout, **files}
        with _lock:
            if _zygote is None or _zygote.poll() is not None:
                _zygote = _start()
            assert _zygote.stdin is not None and _zygote.stdout is not None
            _zygote.stdin.write(json.dumps(request) + "\n")
            _zygote.stdin.flush()
            answer = json.loads(_zygote.stdout.readline() or '{"error": "the zygote died"}')
        if "error" in answer:
            raise RuntimeError(f"newsletter CLI fork: {answer['error']}")
        if answer.get("timed_out"):
            raise subprocess.TimeoutExpired(["newsletter", *args], timeout)
        return subprocess.CompletedProcess(
            [sys.executable, "-m", "newsletter", *args],
            answer["returncode"],
            Path(files["stdout"]).read_text(encoding="utf-8", errors="replace"),
            Path(files["stderr"]).read_text(encoding="utf-8", errors="replace"),
        )


# ---------------------------------------------------------------- the zygote


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``python -m newsletter *args`` and never return."""
    import atexit
    import io
    import runpy
    import traceback

    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, name, mode in ((0, "stdin", os.O_RDONLY), (1, "stdout", _WRITE)):
            target = os.open(request[name], mode, 0o600)
            os.dup2(target, fd)
            os.close(target)
        target = os.open(request["stderr"], _WRITE, 0o600)
        os.dup2(target, 2)
        os.close(target)
        # fresh stream objects over the new descriptors: the zygote's read ahead on its pipes
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
        )
        sys.argv = [str(Path(__import__("newsletter").__file__).parent / "__main__.py")]
        sys.argv += request["args"]
        try:
            runpy.run_module("newsletter", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:  # as the interpreter maps it
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            traceback.print_exc()
            code = 130
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing more to say
                stream.flush()
        os._exit(code)


def _serve() -> None:
    import signal
    import time

    import newsletter.cli  # the point: imported once, before any fork

    newsletter.cli.load_all()  # every command's module, not only those the first call needs

    protocol = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any]
        try:
            pid = os.fork()
        except OSError as exc:
            answer = {"error": f"fork: {exc}"}
        else:
            if pid == 0:
                _child(request)
            deadline = time.monotonic() + float(request["timeout"])
            answer = {}
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    answer["returncode"] = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    answer["timed_out"] = True
                    break
                time.sleep(0.005)
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


if __name__ == "__main__":
    _serve()
