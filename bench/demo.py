"""``newsletter demo`` as a user starts it (a new folder, a new process), against a baseline.

    python bench/demo.py [--baseline REF] [--runs N]

Each run is ``python -m newsletter demo`` in a fresh temporary folder: a new SQLite file, the
seed, the draft, 42 messages through the embedded Celery worker into the local sink. The
baseline is the code at ``REF`` (default ``HEAD``: the same code twice, a check of the noise),
unpacked with ``git archive`` into a temporary folder and put first on ``PYTHONPATH``; the two
run in turn, one pair at a time, so a change of the machine's load falls on both. Printed: the
load average before and after, each side's median wall and CPU seconds (the child's user +
system time), the median of the pairs' ratios, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unpack(ref: str, into: Path) -> None:
    """The tree at ``ref`` (its package, worker, templates, seeds and migrations) in ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def one_run(code: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``newsletter demo`` on ``code``, from a new folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(code)
    with tempfile.TemporaryDirectory(prefix="nl-demo-") as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "newsletter", "demo"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or "delivered: 42" not in done.stdout:
        raise SystemExit(f"the demo on {code} failed:\n{done.stdout}{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git ref of the code to compare with")
    parser.add_argument("--runs", type=int, default=7, help="pairs of runs (after one warm-up)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nl-demo-base-") as base_dir:
        base = Path(base_dir)
        unpack(args.baseline, base)
        load_before = os.getloadavg()[0]
        one_run(ROOT), one_run(base)  # warm-up: the file cache, not counted
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for _ in range(args.runs):
            ours.append(one_run(ROOT))
            theirs.append(one_run(base))
        load_after = os.getloadavg()[0]

    def median(rows: list[tuple[float, float]], i: int) -> float:
        return statistics.median(row[i] for row in rows)

    wall_ratio = statistics.median(o[0] / t[0] for o, t in zip(ours, theirs, strict=True))
    cpu_ratio = statistics.median(o[1] / t[1] for o, t in zip(ours, theirs, strict=True))
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    print(f"this code:   wall {median(ours, 0):.2f} s, CPU {median(ours, 1):.2f} s (medians)")
    print(f"{args.baseline}: wall {median(theirs, 0):.2f} s, CPU {median(theirs, 1):.2f} s")
    print(f"paired ratio (this / baseline): wall {wall_ratio:.3f}, CPU {cpu_ratio:.3f}")
    print(
        json.dumps(
            {
                "bench": "demo",
                "runs": args.runs,
                "baseline": args.baseline,
                "wall_s": round(median(ours, 0), 3),
                "cpu_s": round(median(ours, 1), 3),
                "baseline_wall_s": round(median(theirs, 0), 3),
                "baseline_cpu_s": round(median(theirs, 1), 3),
                "ratio_wall": round(wall_ratio, 3),
                "ratio_cpu": round(cpu_ratio, 3),
                "load_before": round(load_before, 2),
                "load_after": round(load_after, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
