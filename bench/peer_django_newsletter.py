"""Peer benchmark: django-newsletter 1.2.1 and this project send N messages into one SMTP sink.

Issue 17 asks for our rate next to a known open-source sender's, measured the same way on the
same machine in the same run (target: ours >= 8x). One run does, against one Postfix
``smtp-sink`` (the project's aiosmtpd sink in its own process when smtp-sink is not installed):

  * django-newsletter: a throw-away venv (``python -m venv`` in a temp folder, or ``--venv DIR``
    to keep and reuse one) with ``django-newsletter==1.2.1``, Django 4.2 LTS (1.2.1 declares
    Django 4.2 and 5.2), sorl-thumbnail (its image field needs a thumbnailer) and psycopg 3,
    installed by pip at run time (nothing of it is in this
    repository); a minimal Django project (contrib contenttypes, auth, sites and the app, DEBUG
    off, Django's SMTP e-mail backend pointed at the sink) on a scratch PostgreSQL database
    ``nl_bench_<hex>`` created and dropped here; one newsletter, N subscriptions
    (``bulk_create``), one message whose one article is the body of our seeded sample issue's
    compiled email (so the HTML part is about the size of ours, ~55 KB), its submission marked
    prepared; then ``python manage.py submit_newsletter``, its cron command, as shipped: it
    renders the message's Django templates per subscriber and sends each with
    ``EmailMultiAlternatives.send()`` -- one SMTP connection a message, one process;
  * ours: ``bench/deliver.py``'s ``run_phase`` for the same N into the same sink: a fresh
    database with the sample issue, a private redis-server, ``--workers`` Celery worker
    processes (default 2, one prefork worker), batch 200, no send rate limit;
  * both rates are end to end and read off the same clock, the sink's own counter: messages
    accepted / seconds from the start of the send (django-newsletter: launching
    ``submit_newsletter``, Django's start-up included; ours: ``dispatch``, the workers already up
    and idle, as in deliver.py) to the sink accepting the Nth message. deliver.py's own
    definition of our rate (from dispatch to the (N-250)th ledger ``sent_at``) is printed too.
    ``ratio`` = our rate / django-newsletter's.

The last line is one JSON object: subscribers, django_newsletter_rate, our_rate, ratio,
django_newsletter_s, our_s, our_rate_deliver, django_newsletter_cpu_ms_per_msg,
our_cpu_ms_per_msg_workers, html_kb and message_kb of each side, versions, sink.

    python bench/peer_django_newsletter.py                     # 5,000 subscribers
    python bench/peer_django_newsletter.py --subscribers 20000 --venv /tmp/dn-venv
    python bench/peer_django_newsletter.py --skip-ours         # django-newsletter alone

The machine is shared: run it 2-3 times and quote the medians (the README's figures are).
Measured 2026-11-28 on the 2-core machine at load 5-7, 5,000 subscribers, medians of 3 runs:
django-newsletter 36 msg/s, ours 441 msg/s, ratio 12.6x (11.9x, 12.6x, 17.4x); CPU a message
13.6 ms in django-newsletter's process vs 0.98 ms in our workers. django-newsletter is measured
as it ships: one process (``submit_queue`` marks the submission ``sending``, so a second cron run
skips it) and a new SMTP connection per message (``EmailMessage.send()`` without a connection).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from bench import _harness, deliver  # noqa: E402
from bench._harness import RedisServer, Sink, say  # noqa: E402
from newsletter import db, seeding  # noqa: E402
from newsletter.content import issues, rendering  # noqa: E402

# sorl-thumbnail: the app's image field needs sorl-thumbnail or easy-thumbnails (its README)
PEER_REQUIREMENTS = [
    "django-newsletter==1.2.1",
    "Django>=4.2,<5.0",
    "sorl-thumbnail",
    "psycopg[binary]>=3.1",
]

SETTINGS_PY = """\
import os

SECRET_KEY = "peer-bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sites",
    "sorl.thumbnail",
    "newsletter",
]
SITE_ID = 1
ROOT_URLCONF = "peer_urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_DB_NAME"],
        "USER": os.environ["PEER_DB_USER"],
        "PASSWORD": os.environ.get("PEER_DB_PASSWORD", ""),
        "HOST": os.environ["PEER_DB_HOST"],
        "PORT": os.environ["PEER_DB_PORT"],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ["PEER_SMTP_HOST"]
EMAIL_PORT = int(os.environ["PEER_SMTP_PORT"])
NEWSLETTER_THUMBNAIL = "sorl-thumbnail"
"""

URLS_PY = """\
from django.urls import include, path

urlpatterns = [path("newsletter/", include("newsletter.urls"))]
"""

MANAGE_PY = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

# one newsletter, N subscriptions, one message with one article, a prepared submission; prints
# one JSON line with the size of one recipient's message as Django serialises it
PREPARE_PY = """\
import json
import os
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")
django.setup()

from django.contrib.sites.models import Site
from django.utils.timezone import now
from newsletter.models import Article, Message, Newsletter, Submission, Subscription

n, html_file, domain = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(html_file, encoding="utf-8") as f:
    html = f.read()
site = Site.objects.get_current()
letter = Newsletter.objects.create(
    title="The Bench Weekly", slug="bench", email="news@newsletter.example.org",
    sender="The Bench Weekly",
)
letter.site.set([site])
message = Message.objects.create(title="Issue 1", slug="issue-1", newsletter=letter)
Article.objects.create(post=message, title="This week", text=html, sortorder=10)
stamp = now()
Subscription.objects.bulk_create(
    [
        Subscription(
            newsletter=letter, email_field=f"reader{i}@{domain}", name_field=f"Reader {i}",
            subscribed=True, subscribe_date=stamp,
        )
        for i in range(1, n + 1)
    ],
    batch_size=2000,
)
submission = Submission.from_message(message)
Submission.objects.filter(pk=submission.pk).update(
    prepared=True, publish_date=stamp - timedelta(minutes=1)
)
submission.refresh_from_db()
one = submission.get_message(Subscription.objects.order_by("pk").first())
mime = one.message()
html_part = next(p for p in mime.walk() if p.get_content_type() == "text/html")
print(json.dumps({
    "submission": submission.pk,
    "recipients": submission.subscriptions.count(),
    "html_bytes": len(html_part.get_payload(decode=True)),
    "message_bytes": len(mime.as_bytes(linesep="\\r\\n")),
}))
"""


class SinkClock:
    """Watches the sink's counter in a thread from a baseline: when the first message of a send
    was accepted and when the ``n``th was (``time.perf_counter`` values)."""

    def __init__(self, sink: Sink, n: int) -> None:
        self.sink, self.n = sink, n
        self.base = sink.settled() or 0
        self.first: float | None = None
        self.done: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def count(self) -> int:
        return (self.sink.accepted() or 0) - self.base

    def _watch(self) -> None:
        while not self._stop.is_set():
            count, now = self.count(), time.perf_counter()
            if count > 0 and self.first is None:
                self.first = now
            if count >= self.n:
                self.done = now
                return
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def sample_html(workdir: Path) -> tuple[str, int]:
    """The body of our seeded sample issue's compiled email (what django-newsletter's article
    carries; its template adds the document around it) and the whole email's HTML size."""
    settings_url = f"sqlite:///{workdir / 'sample.db'}"
    db.upgrade(settings_url)
    with db.session_scope(settings_url) as session:
        seeding.seed(session)
        issue_id = seeding.draft_sample_issue(session).id
        assert issue_id is not None
        compiled = rendering.compile_issue(issues.load_outline(session, issue_id))
    db.get_engine(settings_url).dispose()
    match = re.search(r"<body[^>]*>(.*)</body>", compiled.html, re.S | re.I)
    body = match.group(1) if match else compiled.html
    # the <head>'s styles go along in a <style> block so that both parts carry the same CSS
    styles = "".join(re.findall(r"<style[^>]*>.*?</style>", compiled.html, re.S | re.I))
    return styles + body, compiled.html_size


def peer_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of the django-newsletter processes: none of ours (no PYTHONPATH: its app
    is also called ``newsletter``)."""
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(("NEWSLETTER_", "PYTHON", "VIRTUAL_ENV", "DJANGO_"))
    }
    env.update(extra)
    return env


def peer_venv(path: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A venv with django-newsletter 1.2.1 at ``path`` (made unless it has it already): its
    python and the installed versions."""
    python = path / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps({p: m.version(p) for p in "
        "('django-newsletter', 'Django', 'sorl-thumbnail', 'psycopg')}))",
    ]
    if python.exists():
        found = subprocess.run(probe, env=env, capture_output=True, text=True)
        if found.returncode == 0:
            versions: dict[str, str] = json.loads(found.stdout)
            if versions.get("django-newsletter") == "1.2.1":
                say(f"peer venv: reusing {path}")
                return python, versions
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(path)], env=env, check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*install, *PEER_REQUIREMENTS], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(PEER_REQUIREMENTS)} failed:\n{done.stderr}")
    versions = json.loads(subprocess.run(probe, env=env, capture_output=True, text=True).stdout)
    say(f"peer venv: {path}, {versions}, installed in {time.monotonic() - t0:.0f}s")
    return python, versions


def run_django_newsletter(
    args: argparse.Namespace, *, sink: Sink, workdir: Path, base_env: dict[str, str]
) -> dict[str, Any]:
    n = args.subscribers
    with ExitStack() as stack:
        venv_dir = args.venv or workdir / "peer-venv"
        python, versions = peer_venv(venv_dir, peer_env(base_env))
        project = workdir / "peer-project"
        project.mkdir()
        for name, body in (
            ("peer_settings.py", SETTINGS_PY),
            ("peer_urls.py", URLS_PY),
            ("manage.py", MANAGE_PY),
            ("prepare_send.py", PREPARE_PY),
        ):
            (project / name).write_text(body)
        body, our_html_size = sample_html(workdir)
        (project / "article.html").write_text(body, encoding="utf-8")

        url = make_url(stack.enter_context(_harness.scratch_database()))
        env = peer_env(
            base_env,
            DJANGO_SETTINGS_MODULE="peer_settings",
            PEER_DB_NAME=url.database or "",
            PEER_DB_USER=url.username or "postgres",
            PEER_DB_PASSWORD=str(url.password or ""),
            PEER_DB_HOST=url.host or "127.0.0.1",
            PEER_DB_PORT=str(url.port or 5432),
            PEER_SMTP_HOST=sink.host,
            PEER_SMTP_PORT=str(sink.port),
        )

        def django(*argv: str) -> str:
            done = subprocess.run(
                [str(python), *argv], cwd=project, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
            return done.stdout

        t0 = time.monotonic()
        django("manage.py", "migrate", "-v", "0")
        prepared = json.loads(
            django("prepare_send.py", str(n), "article.html", _harness.DOMAIN).splitlines()[-1]
        )
        if prepared["recipients"] != n:
            raise RuntimeError(f"the submission has {prepared['recipients']} recipients, not {n}")
        say(
            f"[django-newsletter] {n:,} subscriptions and a prepared submission in "
            f"{time.monotonic() - t0:.1f}s; HTML part {prepared['html_bytes']:,} bytes "
            f"(ours {our_html_size:,}), message {prepared['message_bytes']:,} bytes"
        )

        clock = SinkClock(sink, n)
        stack.callback(clock.stop)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_start = time.perf_counter()
        proc = subprocess.Popen(
            [str(python), "manage.py", "submit_newsletter"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

        def kill() -> None:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        stack.callback(kill)
        timeout, last_line = max(300.0, n / 10), t_start
        while proc.poll() is None:
            time.sleep(0.25)
            now = time.perf_counter()
            if now - last_line >= 5:
                last_line = now
                say(f"[django-newsletter] {now - t_start:6.1f}s {clock.count():,}/{n:,}")
            if now - t_start > timeout:
                raise RuntimeError(f"submit_newsletter not done after {timeout:.0f}s")
        exited = time.perf_counter()
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"submit_newsletter exited with {proc.returncode}:\n{output}")
        deadline = time.monotonic() + 10
        while clock.done is None and time.monotonic() < deadline:
            time.sleep(0.05)
        clock.stop()
        if clock.done is None or clock.first is None:
            raise RuntimeError(
                f"the sink accepted {clock.count()} of {n} messages from submit_newsletter "
                f"(it logs and skips failed sends):\n{output[-2000:]}"
            )
        cpu = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        seconds = clock.done - t_start
        result = {
            "seconds": seconds,
            "rate": n / seconds,
            "first_s": clock.first - t_start,
            "exit_s": exited - t_start,
            "cpu_ms_per_msg": 1000 * cpu / n,
            "html_bytes": prepared["html_bytes"],
            "message_bytes": prepared["message_bytes"],
            "versions": versions,
        }
        say(
            f"[django-newsletter] {n:,} accepted by the sink {seconds:.1f}s after launch "
            f"(first {result['first_s']:.2f}s, process exit {result['exit_s']:.1f}s): "
            f"{result['rate']:,.0f} messages/s; its process used {cpu:.1f} CPU-s "
            f"({result['cpu_ms_per_msg']:.2f} ms a message)"
        )
    return result


def run_ours(args: argparse.Namespace, *, sink: Sink, workdir: Path) -> dict[str, Any]:
    """deliver.py's phase for N into this sink, its clock the same as django-newsletter's."""
    n = args.subscribers
    options = argparse.Namespace(
        subscribers=n,
        workers=args.workers,
        layout="pool",
        batch_size=200,
        parallelism=0,
        keep_db=False,
        py_spy=None,
        ceiling_seconds=5.0,
    )
    with ExitStack() as stack:
        redis_server = RedisServer(workdir=workdir)
        stack.callback(redis_server.stop)
        redis_server.start()
        clock = SinkClock(sink, n)
        stack.callback(clock.stop)
        phase = deliver.run_phase(
            n,
            args=options,
            sink=sink,
            redis=redis_server,
            workdir=workdir,
            measure_ceiling=False,
            label="ours",
        )
        deadline = time.monotonic() + 10
        while clock.done is None and time.monotonic() < deadline:
            time.sleep(0.05)
        clock.stop()
    if clock.done is None or clock.first is None or phase.sent != n:
        raise RuntimeError(f"our send: the sink accepted {clock.count()} of {n}, {phase.sent} sent")
    # dispatch -> first message (the ledger's first sent_at), then the sink's clock to the Nth
    seconds = phase.first_ms / 1000 + (clock.done - clock.first)
    return {
        "seconds": seconds,
        "rate": n / seconds,
        "rate_deliver": phase.rate,
        "cpu_ms_per_msg_workers": 1000 * phase.cpu.get("workers", 0.0) / n,
        "html_bytes": phase.html_bytes,
        "message_bytes": phase.message_bytes,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    base_env = dict(os.environ)  # deliver.run_phase replaces os.environ with the workers' settings
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="nl-peer-"))
        stack.callback(lambda: shutil.rmtree(workdir, ignore_errors=True))
        sink = Sink(workdir=workdir, kind=args.sink)
        stack.callback(sink.stop)
        sink.start()
        say(f"sink: {sink.kind} on {sink.host}:{sink.port}; {os.cpu_count()} CPUs")
        peer = run_django_newsletter(args, sink=sink, workdir=workdir, base_env=base_env)
        ours = None if args.skip_ours else run_ours(args, sink=sink, workdir=workdir)
    n = args.subscribers
    result = {
        "subscribers": n,
        "django_newsletter_rate": round(peer["rate"], 1),
        "our_rate": round(ours["rate"]) if ours else None,
        "ratio": round(ours["rate"] / peer["rate"], 1) if ours else None,
        "django_newsletter_s": round(peer["seconds"], 2),
        "our_s": round(ours["seconds"], 2) if ours else None,
        "our_rate_deliver": round(ours["rate_deliver"]) if ours else None,
        "django_newsletter_cpu_ms_per_msg": round(peer["cpu_ms_per_msg"], 2),
        "our_cpu_ms_per_msg_workers": round(ours["cpu_ms_per_msg_workers"], 2) if ours else None,
        "django_newsletter_html_kb": round(peer["html_bytes"] / 1024, 1),
        "django_newsletter_message_kb": round(peer["message_bytes"] / 1024, 1),
        "our_html_kb": round(ours["html_bytes"] / 1024, 1) if ours else None,
        "our_message_kb": round(ours["message_bytes"] / 1024, 1) if ours else None,
        "workers": args.workers,
        "versions": peer["versions"],
        "sink": sink.kind.split()[0],
    }
    say("")
    say(f"subscribers:        {n:,} into {sink.kind}")
    say(
        f"django-newsletter:  {result['django_newsletter_rate']:,} messages/s "
        f"({peer['seconds']:.1f}s, submit_newsletter, one process, a connection a message; "
        f"{result['django_newsletter_cpu_ms_per_msg']} ms CPU a message)"
    )
    if ours:
        say(
            f"ours:               {result['our_rate']:,} messages/s ({ours['seconds']:.1f}s, "
            f"{args.workers} worker processes; deliver.py's own rate "
            f"{result['our_rate_deliver']:,}; {result['our_cpu_ms_per_msg_workers']} ms "
            "worker CPU a message)"
        )
        say(f"ratio:              {result['ratio']}x (target >= 8)")
    say(json.dumps(result))
    return result


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(__doc__.split("\n", 1)[1]),
    )
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="our Celery worker processes")
    parser.add_argument(
        "--venv", type=Path, default=None, help="keep django-newsletter's venv here and reuse it"
    )
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--skip-ours", action="store_true", help="django-newsletter alone")
    args = parser.parse_args(argv)
    if args.subscribers < 1:
        parser.error("--subscribers must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
