"""Click tracking under load: the redirect endpoint through the real server, every event recorded.

One run, measured against the real stack (fresh database ``nl_bench_<hex>``, the sample issue of
seeds/ with tracking on, its ledger filled for ``--subscribers`` readers and marked sent an hour
ago; ``newsletter serve --workers W`` as production runs it, on PostgreSQL):

  * the load: wrk (Debian package ``wrk``) with a Lua script that cycles through the real
    tracked links of the issue, each request a different (reader, link) pair (link-major: one
    reader's next click comes many seconds later, as people click), ``--connections`` open
    connections, ``--seconds`` per run, ``--repeat`` runs, each on fresh pairs;
  * the baseline: the same wrk run on the same server's ``/healthz`` just before each redirect
    run (no database either; a sync route); ratio = redirects/s / healthz requests/s;
  * p99: wrk's latency percentile, per run (over the whole run: its last 2 s are nobody's
    pixel, see LUA); the median of the runs is quoted;
  * CPU ms a request of the server's processes and of PostgreSQL during each run (from /proc):
    the figure a loaded machine distorts least;
  * then the server is stopped as production stops it (SIGTERM: each process records what it
    buffered) and the engagement_event rows are counted: ``events_recorded`` must equal the
    requests that got a 302 (counted by the Lua script's ``response``), ``requests``;
  * the deliver rate with tracking off and on (``bench/deliver.py``'s ``run_phase``: a real send
    of ``--deliver-subscribers`` through Celery workers to the sink, off/on alternated
    ``--deliver-repeats`` times, medians); ratio on/off.

The machine's load (``uptime``) is printed with each figure. The last line is one JSON object:
redirects_per_s, p99_ms, events_recorded, requests, deliver_rate_tracking_off,
deliver_rate_tracking_on (and the baseline, ratios, runs, load).

    python bench/redirect.py                            # ~1-2 minutes
    python bench/redirect.py --seconds 20 --connections 128 --repeat 5 --workers 2
    python bench/redirect.py --deliver-subscribers 0    # the redirect only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench import _harness  # noqa: E402
from bench._harness import Child, RedisServer, Sink, free_port, say  # noqa: E402
from newsletter import db  # noqa: E402
from newsletter.analytics import tokens  # noqa: E402
from newsletter.config import get_settings  # noqa: E402
from newsletter.sending.checks import qa_config  # noqa: E402
from newsletter.sending.start import fill_ledger  # noqa: E402

SECRET = "bench-secret"
CPU_GROUPS = (("server", "server"), ("postgres", "other:postgres"))
TAIL = 2  # seconds of nobody's pixel after the redirects (see LUA)
# Each wrk thread walks its own share of the paths; after ``redirect_seconds`` it asks for
# nobody's open pixel instead (200, records nothing), so that every redirect in flight is
# answered and counted before wrk stops (wrk drops the answers still in flight at its end).
LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } nl_timespec;
int clock_gettime(int clock, nl_timespec *t);
]]
local clock = ffi.new("nl_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end
local paths, count, step, at, deadline, pixel = {}, 0, 1, 1, 0, ""
found, other, started, last = 0, 0, 0, 0  -- globals: done() reads them from each thread
local threads, next_id = {}, 0
local agent = {["User-Agent"] = "%(agent)s", ["Accept"] = "text/html"}
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(args[1]) do
    count = count + 1
    paths[count] = line
  end
  step = tonumber(args[3])
  at = tonumber(args[2]) + id + 1
  pixel = args[5]
  started = now()
  deadline = started + tonumber(args[4])
end
function request()
  if now() >= deadline then
    return wrk.format("GET", pixel, agent)
  end
  local path = paths[at]
  at = at + step
  if at > count then at = at - count end
  return wrk.format("GET", path, agent)
end
function response(status, headers, body)
  if status == 302 then
    found = found + 1
    last = now()
  elseif status ~= 200 then
    other = other + 1
  end
end
function done(summary, latency, requests)
  local total, others, span = 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("found")
    others = others + thread:get("other")
    span = math.max(span, thread:get("last") - thread:get("started"))
  end
  io.write(string.format("JSON {\\"found\\": %%d, \\"requests\\": %%d, \\"p50\\": %%d, "
    .. "\\"p99\\": %%d, \\"errors\\": %%d, \\"seconds\\": %%f}\\n",
    total, summary.requests, latency:percentile(50), latency:percentile(99),
    others + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, span))
end
"""
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Load:
    """One wrk run."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    found: int  # 302s (the redirect) or all (the baseline)
    errors: int
    load: float


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def env_for(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_ENVIRONMENT": "test",
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_BROKER_URL": f"{redis_url}/0",
            "NEWSLETTER_REDIS_URL": f"{redis_url}/1",
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_SPAM_CHECK": "off",
            "NEWSLETTER_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    return env


def sent_issue(database_url: str, subscribers: int, env: dict[str, str]) -> int:
    """The sample issue, tracked, its ledger filled and marked sent an hour ago."""
    issue_id = _harness.prepare_issue(database_url, active=subscribers)
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    with db.session_scope(database_url) as s:
        s.execute(text("UPDATE newsletter SET track_clicks = true, track_opens = true"))
    with db.session_scope(database_url) as s:
        start = fill_ledger(s, issue_id=issue_id, checks=qa_config(settings))
        if not start.started or start.recipients != subscribers:
            raise RuntimeError(f"fill_ledger: {start}")
    with db.session_scope(database_url) as s:
        ago = "now() - interval '1 hour'"
        s.execute(
            text(f"UPDATE delivery SET status = 'sent', sent_at = {ago} WHERE issue_id = :i"),
            {"i": issue_id},
        )
        s.execute(text("UPDATE issue SET status = 'sent' WHERE id = :i"), {"i": issue_id})
    return issue_id


def write_paths(database_url: str, issue_id: int, path: Path, limit: int) -> int:
    """Every (reader, link) pair's /r/ path, link-major, up to ``limit``: how many."""
    with db.session_scope(database_url) as s:
        links = [
            r.n
            for r in s.execute(
                text("SELECT n FROM issue_link WHERE issue_id = :i AND kind <> 'trap' ORDER BY n"),
                {"i": issue_id},
            )
        ]
        readers = [
            r.subscriber_id
            for r in s.execute(
                text("SELECT subscriber_id FROM delivery WHERE issue_id = :i ORDER BY 1"),
                {"i": issue_id},
            )
        ]
    lines = []
    for n in links:
        for who in readers:
            lines.append(f"/r/{issue_id}/{n}/{tokens.make_token(SECRET, issue_id, who)}")
            if len(lines) >= limit:
                break
        if len(lines) >= limit:
            break
    path.write_text("\n".join(lines) + "\n")
    say(f"{len(lines):,} distinct tracked links ({len(links)} links x {len(readers):,} readers)")
    return len(lines)


def wait_up(port: int, server: Child, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
        if not server.running:
            raise RuntimeError(f"server exited:\n{server.tail()}")
    raise RuntimeError(f"server not up after {timeout:.0f}s")


def wrk(url: str, args: argparse.Namespace, script: Path, *extra: str) -> Load:
    load = load_average()
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    seconds = args.seconds + (TAIL if extra else 0)
    argv += ["-d", f"{seconds:g}s", "--timeout", "5s", "-s", str(script), url]
    if extra:
        argv += ["--", *extra]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^JSON (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"wrk said:\n{out}")
    got = json.loads(match[1])
    return Load(
        rate=got["found"] / got["seconds"],
        p50_ms=got["p50"] / 1000,
        p99_ms=got["p99"] / 1000,
        requests=got["requests"],
        found=got["found"],
        errors=got["errors"],
        load=load,
    )


def baseline_script(workdir: Path) -> Path:
    script = workdir / "healthz.lua"
    script.write_text(
        'function done(summary, latency, requests)\n  io.write(string.format("JSON {\\"found\\": '
        '%d, \\"requests\\": %d, \\"p50\\": %d, \\"p99\\": %d, \\"errors\\": %d, '
        '\\"seconds\\": %f}\\n", summary.requests, summary.requests, latency:percentile(50), '
        "latency:percentile(99), summary.errors.status + summary.errors.timeout, "
        "summary.duration / 1e6))\nend\n"
    )
    return script


def count_events(database_url: str, issue_id: int) -> int:
    with db.session_scope(database_url) as s:
        return int(
            s.execute(
                text("SELECT count(*) FROM engagement_event WHERE issue_id = :i"), {"i": issue_id}
            ).scalar_one()
        )


def redirect_runs(args: argparse.Namespace, workdir: Path, redis: RedisServer) -> dict[str, Any]:
    with ExitStack() as stack:
        database_url = stack.enter_context(_harness.scratch_database(keep=args.keep_db))
        env = env_for(database_url, redis.url)
        t0 = time.monotonic()
        issue_id = sent_issue(database_url, args.subscribers, env)
        paths = workdir / "paths.txt"
        total = write_paths(database_url, issue_id, paths, limit=args.max_paths)
        say(f"issue {issue_id} ready in {time.monotonic() - t0:.1f}s")
        script = workdir / "redirect.lua"
        script.write_text(LUA % {"agent": AGENT})
        port, workers = free_port(), ["--workers", str(args.workers)]
        server = Child(
            "serve",
            [sys.executable, "-m", "newsletter", "serve", "--port", str(port), *workers],
            env=env,
            workdir=workdir,
        )
        stack.callback(server.stop)
        server.start()
        wait_up(port, server)
        base = f"http://127.0.0.1:{port}"
        # one request per process would warm its link cache; wrk's first second does that too
        healthz, redirects = [], []
        cpu: list[dict[str, float]] = []  # CPU ms a request (redirects and the pixel tail)
        stride = args.threads
        for run in range(args.repeat):
            h = wrk(f"{base}/healthz", args, baseline_script(workdir))
            offset = (run * total) // max(args.repeat, 1)
            pixel = f"/o/{issue_id}/{tokens.make_token(SECRET, issue_id, tokens.NOBODY)}.gif"
            before = _harness.cpu_ticks()
            r = wrk(
                base, args, script, str(paths), str(offset), str(stride), str(args.seconds), pixel
            )
            used = _harness.cpu_seconds(
                before,
                _harness.cpu_ticks(),
                {"server": set(_harness.descendants(server.pid)), "bench": {os.getpid()}},
            )
            cpu.append({g: 1000 * used.get(k, 0.0) / max(r.requests, 1) for g, k in CPU_GROUPS})
            healthz.append(h)
            redirects.append(r)
            say(
                f"run {run + 1}: /healthz {h.rate:,.0f}/s p99 {h.p99_ms:.1f} ms "
                f"(load {h.load:.2f}); "
                f"/r/ {r.rate:,.0f}/s p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms, "
                f"{r.found:,} 302s of {r.requests:,}, {r.errors} errors (load {r.load:.2f}); "
                f"ratio {r.rate / h.rate:.2f}; CPU ms a request: "
                + ", ".join(f"{g} {ms:.3f}" for g, ms in cpu[-1].items())
            )
        t_stop = time.monotonic()
        server.stop(timeout=60)
        say(f"server stopped (SIGTERM) in {time.monotonic() - t_stop:.1f}s")
        recorded = count_events(database_url, issue_id)
    found = sum(r.found for r in redirects)
    say(f"events recorded: {recorded:,}; 302s answered: {found:,}")
    if recorded != found:
        say(f"WARNING: {found - recorded:,} events missing")
    return {
        "redirects_per_s": round(statistics.median(r.rate for r in redirects)),
        "p99_ms": round(statistics.median(r.p99_ms for r in redirects), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in redirects), 1),
        "events_recorded": recorded,
        "requests": found,
        "requests_sent": sum(r.requests for r in redirects),
        "healthz_per_s": round(statistics.median(h.rate for h in healthz)),
        "ratio_healthz": round(
            statistics.median(r.rate / h.rate for r, h in zip(redirects, healthz, strict=True)), 2
        ),
        "runs": [round(r.rate) for r in redirects],
        "cpu_ms_per_request": {
            g: round(statistics.median(c[g] for c in cpu), 3) for g, _ in CPU_GROUPS
        },
        "load": [round(r.load, 2) for r in redirects],
        "web_workers": args.workers,
        "connections": args.connections,
        "seconds": args.seconds,
    }


def deliver_rates(args: argparse.Namespace, workdir: Path, redis: RedisServer) -> dict[str, Any]:
    """A send of ``--deliver-subscribers`` with tracking off, then on, alternated."""
    from bench import deliver

    options = deliver.main_parser().parse_args(
        ["--subscribers", str(args.deliver_subscribers), "--workers", str(args.deliver_workers)]
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    loads: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}  # the workers' CPU ms a message
    with ExitStack() as stack:
        sink = Sink(workdir=workdir, kind=options.sink)
        stack.callback(sink.stop)
        sink.start()
        for _ in range(args.deliver_repeats):
            for tracking in (False, True):
                load = load_average()
                phase = deliver.run_phase(
                    args.deliver_subscribers,
                    args=options,
                    sink=sink,
                    redis=redis,
                    workdir=workdir,
                    measure_ceiling=False,
                    tracking=tracking,
                    label=f"tracking {'on' if tracking else 'off'}",
                )
                rates[tracking].append(phase.rate)
                loads[tracking].append(load)
                cpu[tracking].append(1000 * phase.cpu.get("workers", 0.0) / max(phase.sent, 1))
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    say(
        f"deliver: tracking off {[round(r) for r in rates[False]]} msg/s (load "
        f"{loads[False]}), on {[round(r) for r in rates[True]]} msg/s (load {loads[True]}); "
        f"medians {off:,.0f} / {on:,.0f}: ratio {on / off:.2f} (target >= 0.9); workers' CPU "
        f"a message {statistics.median(cpu[False]):.2f} / {statistics.median(cpu[True]):.2f} ms"
    )
    return {
        "deliver_rate_tracking_off": round(off),
        "deliver_rate_tracking_on": round(on),
        "ratio_tracking": round(on / off, 2),
        "worker_cpu_ms_tracking_off": round(statistics.median(cpu[False]), 3),
        "worker_cpu_ms_tracking_on": round(statistics.median(cpu[True]), 3),
        "deliver_subscribers": args.deliver_subscribers,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="nl-bench-redirect-"))
        stack.callback(lambda: shutil.rmtree(workdir, ignore_errors=True))
        redis = RedisServer(workdir=workdir)
        stack.callback(redis.stop)
        redis.start()
        say(
            f"{os.cpu_count()} CPUs; server: {args.workers} web process(es); wrk: {args.threads} "
            f"threads, {args.connections} connections, {args.seconds}s x {args.repeat}"
        )
        result = redirect_runs(args, workdir, redis)
        result.update(
            deliver_rates(args, workdir, redis)
            if args.deliver_subscribers
            else {"deliver_rate_tracking_off": None, "deliver_rate_tracking_on": None}
        )
    say("")
    say(
        f"redirects:  {result['redirects_per_s']:,}/s (target >= 2,000), p99 {result['p99_ms']} ms "
        f"(target < 50), healthz {result['healthz_per_s']:,}/s: ratio {result['ratio_healthz']}"
    )
    say(f"events:     {result['events_recorded']:,} recorded of {result['requests']:,} 302s")
    say(
        f"deliver:    tracking off {result['deliver_rate_tracking_off']} msg/s, on "
        f"{result['deliver_rate_tracking_on']} msg/s (target: within 10%)"
    )
    say(json.dumps(result))
    return result


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="each wrk run")
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="wrk's connections: the bounded load (8 readers clicking at once, as fast as they "
        "are answered); 64 saturates the two cores and measures the queue, not a redirect",
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the medians are quoted")
    parser.add_argument("--workers", type=int, default=2, help="newsletter serve --workers")
    parser.add_argument("--subscribers", type=int, default=10_000, help="readers of the issue")
    parser.add_argument("--max-paths", type=int, default=400_000, help="distinct links written")
    parser.add_argument("--deliver-subscribers", type=int, default=3000, help="0: no deliver")
    parser.add_argument("--deliver-workers", type=int, default=2)
    parser.add_argument("--deliver-repeats", type=int, default=1)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
