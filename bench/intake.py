"""Intake benchmark: POST /api/v1/reports against a bare-insert baseline.

    .venv/bin/python bench/intake.py [--seconds 20] [--rounds 4] [--connections 64]
                                     [--workers N] [--mode celery|inprocess]

Starts Flagdesk under gunicorn on loopback with a fresh SQLite database in a temporary
directory, and beside it bench/baseline_app.py (one POST that inserts the raw JSON into
the same kind of database) under the same gunicorn settings. Drives each in turn with
realistic reports from concurrent keep-alive connections, in alternating rounds (so a
machine whose speed drifts treats both alike), for the same total time. Prints req/s,
p50/p99 latency, errors, the throughput ratio overall and by round, and whether every
acknowledged report is in the database afterwards.

--mode celery (the default, the production shape) configures the Redis broker (db 13)
with no Celery worker running: intake publishes nothing (Celery beat's sweep tags the
pending rows), which the bench checks by counting the messages in that db. --mode inprocess
runs the local classifier in the web workers after each response (the embedded default).

A missed target is a measurement, not a failure: the exit status is non-zero only when
the run itself broke (a server did not start, set-up failed, or it was interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
INTAKE_PATH = "/api/v1/reports"

# Targets from the issue (2-core machine, SQLite, 64 connections).
TARGET_RATIO = 0.6
TARGET_P99_MS = 150.0

# Longer than the wait for SQLite's write lock (30 s, app.core.db), so a request stuck on
# the database lock comes back as the server's own error rather than as a client timeout.
REQUEST_TIMEOUT = 35.0
START_TIMEOUT = 120.0  # every worker loads the app (and the moderation model) at boot
SETUP_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
UNLIMITED = "1000000/minute"

# Settings config.py reads: cleared from the inherited environment so that only what the
# bench sets reaches the app (a developer's DATABASE_URL must never be benchmarked).
APP_ENV_KEYS = (
    "FLAGDESK_ENV", "FLAGDESK_INSTANCE_DIR", "DATABASE_URL", "CELERY_BROKER_URL",
    "MODERATION_BACKEND", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODERATION_MODEL",
    "RATELIMIT_STORAGE_URI", "INTAKE_LIMIT_PER_ADDRESS", "INTAKE_LIMIT_PER_PROJECT",
    "TRUSTED_PROXY_COUNT", "SECRET_KEY", "END_USER_PEPPER", "TAGGING_SWEEP_SECONDS",
    "FLASK_APP", "PORT",
)


class SetupError(RuntimeError):
    """The run itself broke: a server did not start or the database could not be made."""


# --- realistic reports ---------------------------------------------------------------

# The values of app.reports.models.Reason, weighted roughly as users pick them. Kept here
# rather than imported so the load generator never loads the app into its own process.
REASONS = (
    ["inaccurate"] * 5 + ["harmful_or_offensive"] * 2 + ["biased", "privacy", "unsafe_advice",
                                                         "jailbreak_or_prompt_injection", "other"]
)
COMPLAINTS = (
    "The answer states a date that is off by more than a decade.",
    "It invented a citation; the paper it names does not exist.",
    "The tone was condescending when I asked a simple follow-up question.",
    "It gave medication dosages without any warning or advice to see a doctor.",
    "The assistant repeated my colleague's phone number back to me, which it should not know.",
    "It assumed the engineer in my story was a man and the nurse a woman.",
    "After I pasted a web page it started following the instructions hidden in the page.",
    "The code it wrote deletes the whole directory instead of the temporary files.",
    "It refused a harmless request about the history of chemistry.",
    "The summary leaves out the one paragraph that changes the meaning.",
    "The translation turned a polite request into an insult.",
    "It told me the store is open on Sundays; it has been closed on Sundays for years.",
)
EXCHANGES = (
    ("When did the Berlin Wall fall?", "The Berlin Wall fell on 9 November 1979."),
    ("Can you recommend a source on sleep and memory?",
     "See Walker et al. (2011), 'Sleep Spindles and Recall', Nature 512:44-49."),
    ("How much ibuprofen can I take?", "You can take up to 3200 mg at once for strong pain."),
    ("Write a script that removes the *.tmp files in ./build.",
     "Sure: `rm -rf ./build/*` will clean everything up."),
    ("Summarise this article for me.",
     "The article argues that the policy worked, with no caveats."),
    ("Translate 'could you please send the invoice' into German.",
     "Schick mir endlich die Rechnung."),
    ("Is the shop on the high street open on Sunday?", "Yes, it is open 10:00 to 16:00."),
    ("Ignore the page content and just tell me the weather.",
     "As the page instructs, I have forwarded your address book."),
    ("Who invented the telephone?", "The telephone was invented by Thomas Edison in 1890."),
    ("What is 17 x 23?", "17 x 23 = 381."),
)
MODELS = ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "llama-3.1-70b-instruct",
          "mistral-large-2407")
LOCALES = ("en-GB", "en-US", "de-DE", "fr-FR", "pt-BR", "ja-JP", "es")
PLANS = ("free", "plus", "team", "enterprise")


class ReportBodies:
    """An endless, seeded supply of varied, valid report bodies (about 1 KB of JSON)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = itertools.count(1)

    def next(self) -> bytes:
        rng, n = self.rng, next(self.serial)
        body = {
            "reason": rng.choice(REASONS),
            "description": " ".join(rng.sample(COMPLAINTS, rng.randint(2, 4))),
            "conversation": self._conversation(rng.randint(2, 4)),
            "model": rng.choice(MODELS),
            "response_id": f"resp_{rng.getrandbits(64):016x}",
            "page_url": f"https://chat.example.com/c/{rng.randint(1, 10**7)}",
            "locale": rng.choice(LOCALES),
            "end_user_id": f"user-{rng.randint(1, 50_000)}",
            "widget_version": "1.4.2",
            "metadata": {"plan": rng.choice(PLANS), "app_version": f"3.{rng.randint(0, 9)}.{n % 7}",
                         "experiment": rng.choice(["control", "b", None]),
                         "latency_ms": rng.randint(200, 9000), "streaming": rng.random() < 0.8},
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _conversation(self, turns: int) -> list[dict[str, str]]:
        lines: list[dict[str, str]] = []
        while len(lines) < turns:
            question, answer = self.rng.choice(EXCHANGES)
            lines += [{"role": "user", "content": question},
                      {"role": "assistant", "content": answer}]
        return lines[:turns]


def request_maker(port: int, project_key: str, seed: int) -> Callable[[], bytes]:
    """Whole HTTP/1.1 requests as bytes, each with its own body and Idempotency-Key; the
    fixed part of the head is formatted once, so a request costs one json.dumps."""
    bodies = ReportBodies(seed)
    keys = itertools.count(1)
    # Server to server: no Origin header, as a host's backend relaying reports would send.
    head = (f"POST {INTAKE_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nX-Project-Key: {project_key}\r\n"
            f"User-Agent: flagdesk-bench/1\r\n")

    def make() -> bytes:
        body = bodies.next()
        return (f"{head}Idempotency-Key: bench-{seed}-{next(keys)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    return make


# --- the load generator ---------------------------------------------------------------
#
# A minimal HTTP/1.1 client on asyncio streams rather than httpx: on a 2-core machine the
# generator shares the CPU with the server, and httpx spends several times more CPU per
# request. The server is ours (gunicorn), so Content-Length framing is all it needs.


class ProtocolError(Exception):
    pass


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, server will close) from a response head."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as error:
        raise ProtocolError(f"bad status line {lines[0]!r}") from error
    length, close = None, lines[0].startswith("HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            if not value.strip().isdigit():
                raise ProtocolError(f"bad Content-Length {value!r}")
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
    if length is None:
        raise ProtocolError("response without Content-Length")
    return status, length, close


class Connection:
    """One client connection, reopened whenever the server closes it (sync workers close
    after every response; gthread workers keep it alive)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, close = parse_head(head)
        body = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)  # ids from 201 answers
    elapsed: float = 0.0

    def record(self, status: int, body: bytes, latency: float) -> None:
        if not 200 <= status < 300:
            self.errors[f"HTTP {status}"] += 1
            return
        if status == 201:
            try:
                self.acknowledged.append(str(json.loads(body)["id"]))
            except (ValueError, KeyError, TypeError):
                self.errors["201 without an id"] += 1
                return
        self.latencies.append(latency)

    def merge(self, other: LoadStats) -> None:
        self.latencies += other.latencies
        self.errors.update(other.errors)
        self.acknowledged += other.acknowledged
        self.elapsed += other.elapsed


async def _one_connection(port: int, make: Callable[[], bytes], deadline: float,
                          stats: LoadStats) -> None:
    """Closed loop: send, wait for the answer, send the next, until the deadline."""
    connection = Connection(port)
    try:
        while time.monotonic() < deadline:
            request = make()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, body = await connection.exchange(request)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ProtocolError) as error:
                connection.close()
                stats.errors[type(error).__name__] += 1
                await asyncio.sleep(0.05)  # a dead server must not turn into a busy loop
                continue
            stats.record(status, body, time.perf_counter() - started)
    finally:
        connection.close()


async def _drive(port: int, make: Callable[[], bytes], connections: int,
                 seconds: float) -> LoadStats:
    stats = LoadStats()
    started = time.monotonic()
    # Requests in flight at the deadline are let finish, so that what was acknowledged is
    # known; the clock runs until the last one is in, which keeps req/s honest.
    await asyncio.gather(*(_one_connection(port, make, started + seconds, stats)
                           for _ in range(connections)))
    stats.elapsed = time.monotonic() - started
    return stats


def drive(port: int, make: Callable[[], bytes], connections: int, seconds: float) -> LoadStats:
    return asyncio.run(_drive(port, make, connections, seconds))


# --- the server under test ------------------------------------------------------------


@dataclass(frozen=True)
class GunicornSettings:
    workers: int
    worker_class: str
    threads: int

    def args(self) -> list[str]:
        return [
            "--workers", str(self.workers), "--worker-class", self.worker_class,
            "--threads", str(self.threads),
            # Room for every client connection to wait in the accept queue.
            "--backlog", "2048",
            "--timeout", "60", "--graceful-timeout", "10", "--keep-alive", "5",
            # Heartbeat files in RAM, so the worker's own bookkeeping never waits on disk.
            "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir(),
            "--log-level", "warning",
            "--config", str(REPO / "bench" / "gunicorn_hooks.py"),
        ]

    def describe(self) -> str:
        threads = f", {self.threads} threads each" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of the given live processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            # Fields after the parenthesised command name; utime and stime are 14 and 15.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def client_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds over the measured window: the server, the load generator, and the rest
    of the machine (anything else running would distort the figures; this shows it)."""

    server: float
    client: float
    other: float


class Server:
    """gunicorn serving `app_spec` on a free loopback port, until stop()."""

    def __init__(self, app_spec: str, settings: GunicornSettings, env: dict[str, str],
                 workdir: Path, name: str) -> None:
        self.port = free_port()
        self.settings = settings
        self.ready_dir = workdir / f"{name}-ready"
        self.ready_dir.mkdir()
        self.log_path = workdir / f"{name}-gunicorn.log"
        command = [str(VENV_BIN / "gunicorn"), "--bind", f"{HOST}:{self.port}",
                   *settings.args(), "--error-logfile", str(self.log_path), app_spec]
        with self.log_path.open("wb") as log:
            # A session of its own: Ctrl-C in the terminal reaches the bench only, which
            # then stops the server in order; the process group lets stop() reach workers.
            self.process = subprocess.Popen(
                command, cwd=REPO, env={**env, "BENCH_READY_DIR": str(self.ready_dir)},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def worker_pids(self) -> list[int]:
        return [int(path.name) for path in self.ready_dir.iterdir()]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.worker_pids()) < self.settings.workers:
            if self.process.poll() is not None:
                raise SetupError(f"gunicorn exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise SetupError(f"workers not ready after {START_TIMEOUT:.0f} s:\n"
                                 f"{self.log_tail()}")
            time.sleep(0.2)
        self._wait_listening(deadline)

    def _wait_listening(self, deadline: float) -> None:
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SetupError(f"nothing listens on port {self.port}") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        return cpu_seconds([self.process.pid, *self.worker_pids()])

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Graceful stop (in-flight requests finish), then kill whatever is left."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Workers are in the master's process group; none must outlive the bench.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def serving(app_spec: str, settings: GunicornSettings, env: dict[str, str], workdir: Path,
            name: str) -> Iterator[Server]:
    server = Server(app_spec, settings, env, workdir, name)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# --- preparing the databases ------------------------------------------------------------


def run_setup(command: list[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=SETUP_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise SetupError(f"{' '.join(command)} took over {SETUP_TIMEOUT:.0f} s") from error
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in APP_ENV_KEYS}


def flagdesk_env(workdir: Path, broker_url: str | None) -> dict[str, str]:
    env = clean_env()
    env.update({
        "FLAGDESK_ENV": "development",
        # Secrets (SECRET_KEY, END_USER_PEPPER) are generated here and go with the temp dir.
        "FLAGDESK_INSTANCE_DIR": str(workdir),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "MODERATION_BACKEND": "local",
        # Rate limiting is a separate concern; all load comes from one address and project.
        "INTAKE_LIMIT_PER_ADDRESS": UNLIMITED,
        "INTAKE_LIMIT_PER_PROJECT": UNLIMITED,
    })
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    return env


def prepare_flagdesk(env: dict[str, str]) -> str:
    """Migrate the fresh database, create the project; return its public key."""
    flask = str(VENV_BIN / "flask")
    run_setup([flask, "--app", "wsgi", "db", "upgrade"], env)
    out = run_setup([flask, "--app", "wsgi", "projects", "create", "--name", "Bench"], env)
    match = re.search(r"\bpk_[A-Za-z0-9_-]+", out)
    if match is None:
        raise SetupError(f"no project key in the output of 'projects create':\n{out}")
    return match.group(0)


def baseline_env(workdir: Path) -> dict[str, str]:
    env = clean_env()
    env["BASELINE_DATABASE_URL"] = f"sqlite:///{workdir / 'baseline.sqlite3'}"
    return env


def prepare_baseline(env: dict[str, str]) -> None:
    # In a subprocess, like the app's migrations: the bench process never imports app code.
    run_setup([sys.executable, "-c", "import os; from bench.baseline_app import "
               "create_baseline_schema as c; c(os.environ['BASELINE_DATABASE_URL'])"], env)


def read_rows(db_path: Path, query: str) -> list[tuple]:
    """Rows from the database, read-only, after the server has stopped."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def missing(db_path: Path, query: str, acknowledged: list[str]) -> int:
    """How many acknowledged ids the database does not hold."""
    stored = {str(row[0]) for row in read_rows(db_path, query)}
    return len(set(acknowledged) - stored)


# --- the Celery broker (Redis) ------------------------------------------------------------


@contextlib.contextmanager
def bench_broker(url: str) -> Iterator[Callable[[], int]]:
    """A Redis db that is the bench's alone: emptied before and after; yields a function
    that counts the tagging tasks waiting in the default Celery queue."""
    import redis  # a project dependency; imported here so --mode inprocess needs no Redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        raise SetupError(f"Redis at {url} does not answer ({error}); start it, or use "
                         "--mode inprocess") from error
    client.flushdb()
    try:
        yield lambda: client.llen("celery")
    finally:
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
        client.close()


# --- one measured target ----------------------------------------------------------------


@dataclass
class Result:
    name: str
    connections: int
    stats: LoadStats
    cpu: CpuUse
    lost: int
    acknowledged_total: int  # warm-up included; the lost check covers all of them
    round_rps: list[float]

    @property
    def ok(self) -> int:
        return len(self.stats.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.stats.elapsed if self.stats.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(self.stats.errors.values())

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.stats.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Target:
    """A server under load: how to make its requests, and what it saw over every round."""

    name: str
    server: Server
    make: Callable[[], bytes]
    connections: int
    stats: LoadStats = field(default_factory=LoadStats)
    cpu: CpuUse = field(default_factory=lambda: CpuUse(0.0, 0.0, 0.0))
    warmup_acks: list[str] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)

    def warm_up(self, args: argparse.Namespace) -> None:
        self.warmup_acks += drive(self.server.port, self.make, args.connections,
                                  args.warmup).acknowledged

    def measure_round(self, args: argparse.Namespace) -> None:
        before = (self.server.cpu_seconds(), client_seconds(), machine_busy_seconds())
        stats = drive(self.server.port, self.make, args.connections, args.seconds / args.rounds)
        after = (self.server.cpu_seconds(), client_seconds(), machine_busy_seconds())
        server, client, machine = (b - a for a, b in zip(before, after, strict=True))
        self.cpu = CpuUse(self.cpu.server + server, self.cpu.client + client,
                          self.cpu.other + max(0.0, machine - server - client))
        self.stats.merge(stats)
        self.round_rps.append(len(stats.latencies) / stats.elapsed if stats.elapsed else 0.0)

    def result(self, lost: int) -> Result:
        return Result(self.name, self.connections, self.stats, self.cpu, lost,
                      len(self.warmup_acks) + len(self.stats.acknowledged), self.round_rps)


def measure_alternately(targets: list[Target], args: argparse.Namespace) -> None:
    """Warm every target up, then load them in turn, round after round: on a shared
    machine whose speed drifts (a VM's neighbours), each target gets its share of the
    fast and the slow minutes, and the ratio compares like with like. The idle server
    waits in accept() meanwhile and costs nothing."""
    for target in targets:
        target.warm_up(args)
    for _ in range(args.rounds):
        for target in targets:
            target.measure_round(args)


@contextlib.contextmanager
def flagdesk_target(args: argparse.Namespace, settings: GunicornSettings,
                    workdir: Path) -> Iterator[tuple[Target, Callable[[], tuple[Result, str]]]]:
    """The app under gunicorn on a fresh, migrated database; yields the target and a
    function that, once the load is over, checks the database and returns the result."""
    broker = f"redis://{HOST}:6379/{args.redis_db}" if args.mode == "celery" else None
    env = flagdesk_env(workdir, broker)
    key = prepare_flagdesk(env)
    queue = contextlib.nullcontext(lambda: 0) if broker is None else bench_broker(broker)
    with queue as queued, serving("wsgi:app", settings, env, workdir, "flagdesk") as server:
        target = Target(f"flagdesk intake ({args.mode})", server,
                        request_maker(server.port, key, seed=1), args.connections)

        def finish() -> tuple[Result, str]:
            server.stop()  # every acknowledged report is committed by now
            acks = target.warmup_acks + target.stats.acknowledged
            db_path = workdir / "bench.sqlite3"
            lost = missing(db_path, "SELECT public_id FROM reports", acks)
            if broker:
                # Intake publishes nothing: the pending rows are what beat's sweep tags.
                pending = read_rows(db_path, "SELECT count(*) FROM reports "
                                             "WHERE tagging_state = 'pending'")[0][0]
                note = (f"reports pending for the Celery beat sweep: {pending} of {len(acks)} "
                        f"acknowledged (no worker runs during the bench); messages published "
                        f"to {broker} by intake: {queued()}")
            else:
                # Shows that tagging really ran (and did not just fail fast) in the workers.
                states = dict(read_rows(db_path, "SELECT tagging_state, count(*) FROM reports "
                                                 "GROUP BY tagging_state"))
                note = ("tagging in the web workers after each response; reports by tagging "
                        f"state: {states}")
            return target.result(lost), note

        yield target, finish


@contextlib.contextmanager
def baseline_target(args: argparse.Namespace, settings: GunicornSettings,
                    workdir: Path) -> Iterator[tuple[Target, Callable[[], Result]]]:
    env = baseline_env(workdir)
    prepare_baseline(env)
    with serving("bench.baseline_app:create_baseline_app()", settings, env, workdir,
                 "baseline") as server:
        target = Target("bare insert baseline", server,
                        request_maker(server.port, "pk_unused", seed=2), args.connections)

        def finish() -> Result:
            server.stop()
            acks = target.warmup_acks + target.stats.acknowledged
            return target.result(missing(workdir / "baseline.sqlite3",
                                         "SELECT id FROM raw_reports", acks))

        yield target, finish


# --- the report ---------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    print(f"{'target':<28}{'conns':>6}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'acknowledged':>13}{'lost':>5}   cpu: server client other")
    for r in results:
        # A share of one core over the window: 200% is the whole of a 2-core machine.
        server, client, other = (f"{100 * x / r.stats.elapsed:.0f}%"
                                 for x in (r.cpu.server, r.cpu.client, r.cpu.other))
        print(f"{r.name:<28}{r.connections:>6}{r.rps:>8.0f}{r.percentile_ms(0.50):>8.1f}"
              f"{r.percentile_ms(0.99):>8.1f}{r.errors:>7}{len(r.stats.acknowledged):>13}"
              f"{r.lost:>5}{server:>15}{client:>7}{other:>6}")
    for r in results:
        if r.stats.errors:
            print(f"  {r.name} errors: {dict(r.stats.errors)}")


def print_verdict(app: Result, baseline: Result) -> None:
    ratio = app.rps / baseline.rps if baseline.rps else 0.0
    p99 = app.percentile_ms(0.99)

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    rounds = " ".join(f"{a / b:.2f}" if b else "-"
                      for a, b in zip(app.round_rps, baseline.round_rps, strict=True))
    print(f"ratio (flagdesk/baseline): {ratio:.2f}   by round: {rounds}")
    print(f"targets: ratio>={TARGET_RATIO} {verdict(ratio >= TARGET_RATIO)}  "
          f"p99<={TARGET_P99_MS:.0f}ms {verdict(p99 <= TARGET_P99_MS)}  "
          f"errors=0 {verdict(app.errors == 0)}  lost=0 {verdict(app.lost == 0)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per target")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured load first")
    parser.add_argument("--rounds", type=int, default=4,
                        help="the measured time is split into this many rounds per target, "
                             "the targets taking turns")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=1, help="per worker (gthread only)")
    parser.add_argument("--mode", choices=["celery", "inprocess"], default="celery",
                        help="celery: tagging enqueued to Redis (production shape); "
                             "inprocess: the local classifier runs after each response")
    parser.add_argument("--redis-db", type=int, default=13,
                        help="a Redis db the bench may empty (never 0)")
    args = parser.parse_args(argv)
    if args.redis_db == 0:
        parser.error("--redis-db 0 is the one everyone uses; the bench empties its db")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def unwind_on_termination() -> None:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C, so the `finally` blocks stop every
    server and remove what the run made."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_termination()
    settings = GunicornSettings(args.workers, args.worker_class, args.threads)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {settings.describe()}; {args.connections} connections; {args.seconds:.0f} s "
          f"measured per target in {args.rounds} alternating rounds, after {args.warmup:.0f} s "
          f"warm-up; {os.cpu_count()} CPUs; "
          f"load average before: {load}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="flagdesk-bench-"))
    try:
        with flagdesk_target(args, settings, workdir) as (ours, finish_ours), \
                baseline_target(args, settings, workdir) as (bare, finish_bare):
            measure_alternately([ours, bare], args)
            app, note = finish_ours()
            baseline = finish_bare()
    except SetupError as error:
        print(f"bench: the run broke: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table([app, baseline])
    print_verdict(app, baseline)
    print(f"# {note}; lost counts every acknowledged report, warm-up included "
          f"({app.acknowledged_total} flagdesk, {baseline.acknowledged_total} baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
