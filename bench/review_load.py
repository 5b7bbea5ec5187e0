"""Review load benchmark: many radiologists judging and rewriting steps through the API at once.

Run it from the repository root; it needs only a reachable PostgreSQL server:

    .venv/bin/python bench/review_load.py                      # 1, 8, 32 reviewers, 15 s each
    .venv/bin/python bench/review_load.py --seconds 5 --readers 1,8

What it does, in order:
1. creates a throwaway database (`workbench_bench` on DATABASE_URL's server, or --database-url;
   its name must end in "_bench", and one that exists already is dropped only if this script
   made it), migrates it with manage.py and seeds one radiologist per simulated reviewer,
   each with an API token and 50 assigned 6-step chains;
2. starts gunicorn (`reasoner_site.wsgi`, DEBUG off, a fresh secret key) on 127.0.0.1 with
   gunicorn.conf.py's settings (gthread workers, keep-alive), as the README's production line
   does; --workers and --threads override its worker and thread counts;
3. for each reviewer count, runs that many threads for --seconds, each with its own keep-alive
   connection (plain http.client: the load generator shares the cores it measures). Each
   reviewer opens one of its own chains (GET), then judges steps (PATCH verdict), rewrites them
   (PATCH text), does both in one PATCH, and now and then re-sends a write based on an old
   version, which must get 409;
4. prints actions/s and p50/p95/p99 latency per action beside the targets, then checks that no
   accepted write was lost: versions, texts, verdicts and audit events against the database;
5. stops gunicorn and drops the database whatever happens (gunicorn also gets SIGTERM on Linux if
   this script is killed outright). Exit status 1 when the check fails.

Reviewers send their next request as soon as the last one is answered (a closed loop: the
server's saturation point); give --think-ms for paced reviewers instead. A last phase runs the
target load: 32 reviewers who pause a random think time (mean --paced-think-ms, 90 ms) between
requests, about 11 actions/s each and 300+ together, which is where the p95 target applies
(with no think time at all, 32 reviewers at a 50 ms p95 would need over 640 actions/s).

It is a benchmark, not a test: loopback traffic only, and every stage is bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import runpy
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/workbench_bench"

TARGET_P95_MS = 50.0  # all actions together, at TARGET_AT reviewers
TARGET_AT = 32
TARGET_RATE = 300.0  # actions per second

CHAINS_PER_READER = 50
STEPS_PER_CHAIN = 6
WRITES_PER_VISIT = 3  # a reviewer works a while on a chain after opening it
REQUEST_TIMEOUT_S = 10.0  # one request; also bounds how long a phase can overrun
START_TIMEOUT_S = 60.0  # gunicorn answering its first request
MIGRATE_TIMEOUT_S = 300.0
MARKER = "scratch database of bench/review_load.py"  # its comment: only such a database is dropped
NOISY_NEIGHBOURS = 0.25  # CPU share of one core used by unrelated processes worth a warning

# What a reviewer does to a step after opening its chain, and how often (relative weights).
WRITE_MIX = {"patch_verdict": 0.55, "patch_text": 0.25, "patch_both": 0.12, "stale_write": 0.08}
ACTIONS = ("get_chain", *WRITE_MIX)
VERDICTS = ("correct", "incorrect", "irrelevant")
SEED_STEPS = (
    "Assess the costophrenic angles on the frontal view.",
    "The right costophrenic angle is blunted with a meniscus sign.",
    "The left hemidiaphragm is sharply outlined.",
    "Heart size is within normal limits.",
    "A small right pleural effusion best explains the blunting.",
    "Answer: A) Yes.",
)


@dataclass
class Reader:
    username: str
    token: str
    chains: list[str]  # UUIDs of the chains assigned to this reader


@dataclass
class Write:
    """A PATCH the server accepted, as the server said the step now is."""

    step: str
    version: int
    changes: int  # fields the PATCH changed: each one bumps the version (the same value: none)
    text: str
    verdict: str


@dataclass
class ReviewerLog:
    """What one simulated reviewer saw; one per thread, merged after the threads end."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    writes: list[Write] = field(default_factory=list)
    conflicts: int = 0  # 409s answering the deliberately stale writes
    surprises: list[str] = field(default_factory=list)  # anything but the expected answer


@dataclass
class Phase:
    readers: int
    seconds: float  # wall time from the first request to the last answer
    logs: list[ReviewerLog]
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core, by process group
    think_ms: float = 0.0  # mean pause between a reviewer's requests (0: closed loop)

    def latencies(self, action: str | None = None) -> list[float]:
        return sorted(
            ms
            for log in self.logs
            for name, values in log.latencies.items()
            if action in (None, name)
            for ms in values
        )

    @property
    def actions(self) -> int:
        return len(self.latencies())

    @property
    def rate(self) -> float:
        return self.actions / self.seconds if self.seconds else 0.0


# --- database --------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def bench_database(url: str) -> Iterator[str]:
    """Create the database named in `url` afresh; drop it on the way out, whatever happened.

    The name must end in "_bench", and a database of that name that already exists is only
    dropped when this script created it (it leaves MARKER as the database's comment): a typo
    in --database-url must never cost anyone their data.
    """
    name = urlsplit(url).path.lstrip("/")
    if not name.endswith("_bench") or not name.replace("_", "").isalnum():
        raise SystemExit(f"Refusing to use database {name!r}: give a name ending in '_bench'")
    admin = _with_database(url, "postgres")
    quoted = f'"{name}"'  # safe: checked above to be letters, digits and underscores

    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
        if found is not None and found[0] != MARKER:
            raise SystemExit(
                f"Refusing to drop database {name!r}: it exists and this script did not create it"
            )
        if found is not None:  # left over from a run that was killed before it cleaned up
            conn.execute(f"DROP DATABASE {quoted} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {quoted}")
        conn.execute(f"COMMENT ON DATABASE {quoted} IS '{MARKER}'")
    try:
        yield url
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        print(f"Dropped database {name}.")


def server_env(database_url: str, var_dir: Path) -> dict[str, str]:
    """The environment of a production deployment (DEBUG off), pointed at the bench database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_LOG_LEVEL="WARNING",
        WORKBENCH_VAR_DIR=str(var_dir),  # keep the checkout's var/ out of it
    )
    return env


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_S,
    )
    if result.returncode:
        raise SystemExit(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")


def setup_django(env: dict[str, str]) -> None:
    """Use the app's own models in this process, with the server's settings."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "reasoner_site.settings"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed(readers: int, chains_per_reader: int, steps_per_chain: int) -> list[Reader]:
    """Radiologists with tokens, each assigned their own chains (built as tests/conftest.py does)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from annotation import services
    from annotation.models import Assignment, Case, Chain, Report, Role, Step

    texts = [SEED_STEPS[i % len(SEED_STEPS)] for i in range(steps_per_chain)]
    cast: list[Reader] = []
    with transaction.atomic():
        report = Report.objects.create(
            text="FINDINGS: Right pleural effusion. IMPRESSION: Effusion."
        )
        for r in range(readers):
            user = get_user_model()(username=f"reader{r:02d}")
            user.set_unusable_password()  # token auth only; hashing 32 passwords is slow
            user.save()
            services.set_role(user, Role.RADIOLOGIST)
            token = Token.objects.create(user=user)
            cases = Case.objects.bulk_create(
                Case(
                    source="bench",
                    external_id=f"r{r}-c{c}",
                    content_hash=f"{r:032d}{c:032d}",
                    task_type="binary",
                    report=report,
                    answer=["A"],
                    question="Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
                    options=[{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}],
                )
                for c in range(chains_per_reader)
            )
            chains = Chain.objects.bulk_create(
                Chain(case=case, origin=Chain.Origin.MINED_LLM) for case in cases
            )
            Step.objects.bulk_create(
                # bulk_create skips Step.save, which is what fills original_text
                Step(chain=chain, position=p, text=text, original_text=text)
                for chain in chains
                for p, text in enumerate(texts, start=1)
            )
            Assignment.objects.bulk_create(Assignment(chain=chain, reader=user) for chain in chains)
            cast.append(Reader(user.username, token.key, [str(chain.uuid) for chain in chains]))
    return cast


# --- server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    pid: int  # the gunicorn master; its workers are its children


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM if the benchmark itself is killed."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1  # from <sys/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextmanager
def gunicorn(
    env: dict[str, str], workers: int, threads: int, log_path: Path, probe: tuple[str, str]
) -> Iterator[Server]:
    """Serve reasoner_site.wsgi on loopback until the block ends."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "reasoner_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "--timeout",
        "30",
    ]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        _wait_until_up(server, base, probe, log_path)
        yield Server(base, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        print(f"Stopped gunicorn (pid {server.pid}).")


def _wait_until_up(
    server: subprocess.Popen[bytes], base: str, probe: tuple[str, str], log_path: Path
) -> None:
    token, chain = probe
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                f"gunicorn exited ({server.returncode}):\n{log_path.read_text()[-3000:]}"
            )
        try:
            answer = requests.get(
                f"{base}/api/v1/chains/{chain}/",
                headers={"Authorization": f"Token {token}"},
                timeout=5,
            )
        except (requests.ConnectionError, requests.Timeout):
            # Not listening yet, or the workers are still importing Django: ask again.
            time.sleep(0.2)
            continue
        if answer.status_code == 200:
            return
        raise SystemExit(f"gunicorn answered {answer.status_code}: {answer.text[:500]}")
    raise SystemExit(f"gunicorn did not answer in {START_TIMEOUT_S:.0f} s")


def warm_up(base: str, readers: list[Reader], requests_each: int, threads: int) -> None:
    """Let every worker import its views and open its database connection; nothing recorded."""

    def fetch(reader: Reader) -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Token {reader.token}"
            for chain in reader.chains[:requests_each]:
                http.get(f"{base}/api/v1/chains/{chain}/", timeout=REQUEST_TIMEOUT_S)

    pool = [
        threading.Thread(target=fetch, args=(readers[i % len(readers)],)) for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=REQUEST_TIMEOUT_S * requests_each)


# --- where the cores went --------------------------------------------------------------------


def cpu_snapshot(server_pid: int) -> dict[str, Any]:
    """CPU seconds used so far by gunicorn, PostgreSQL, this process and the whole machine.

    Read from Linux's /proc; elsewhere it returns {} and the report leaves the line out.
    PostgreSQL counts every `postgres` process, so other users of the server show up there.
    Server processes are kept per pid: one that ends between two snapshots (a database
    connection closed after DJANGO_CONN_MAX_AGE) must not count as negative time.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        # First line of /proc/stat: user nice system idle iowait ... in ticks, all cores together.
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return {}
    snap: dict[str, Any] = {
        "gunicorn": {},
        "postgres": {},
        "load generator": time.process_time(),
        "machine": (sum(ticks) - ticks[3] - ticks[4]) / tick,
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if server_pid in (int(entry.name), int(fields[1])):
            snap["gunicorn"][entry.name] = seconds
        elif command == "postgres":
            snap["postgres"][entry.name] = seconds
    return snap


def cpu_share(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, float]:
    """Per group, the share of one core used between two snapshots; `other` is everything else.

    A process that started in between counts from zero; one that ended in between is left out
    (its last moments are lost, which can only understate that group).
    """
    if not before or not after or seconds <= 0:
        return {}
    share: dict[str, float] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            used = sum(s - before[key].get(pid, 0.0) for pid, s in value.items())
        else:
            used = value - before[key]
        share[key] = max(0.0, used) / seconds
    machine = share.pop("machine")
    share["other"] = max(0.0, machine - sum(share.values()))
    return share


# --- the simulated reviewers -----------------------------------------------------------------


class Client:
    """One reviewer's keep-alive HTTP/1.1 connection, as a browser tab or a script holds one.

    Plain http.client rather than requests: the reviewers share the machine's cores with the
    server they measure, and requests' sessions, adapters and hooks cost several times the
    CPU of the call itself. Reconnects by itself after the server closes the connection.
    """

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=REQUEST_TIMEOUT_S
        )
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=data, headers=headers)
            answer = self.connection.getresponse()
            payload = answer.read()
        except Exception:
            self.connection.close()  # a fresh connection for the next request
            raise
        if answer.will_close:
            self.connection.close()
        return answer.status, payload

    def close(self) -> None:
        self.connection.close()


def _call(
    client: Client, log: ReviewerLog, action: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """One timed request; (0, None) when it failed to get an answer at all."""
    started = time.perf_counter()
    try:
        status, payload = client.request(method, path, body)
    except (OSError, http.client.HTTPException) as exc:
        log.surprises.append(f"{action}: {type(exc).__name__}: {exc}")
        time.sleep(0.1)  # a refused connection must not become a hot loop
        return 0, None
    log.latencies[action].append((time.perf_counter() - started) * 1000)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload[:200].decode(errors="replace")


def review(
    base: str, reader: Reader, deadline: float, seed: int, think_s: float, log: ReviewerLog
) -> None:
    """Work through the reader's own chains until the deadline, as the review page would."""
    rng = random.Random(seed)
    actions, weights = list(WRITE_MIX), list(WRITE_MIX.values())
    edits = 0
    client = Client(base, reader.token)
    try:
        while time.monotonic() < deadline:
            chain = rng.choice(reader.chains)
            status, body = _call(client, log, "get_chain", "GET", f"/api/v1/chains/{chain}/")
            if status != 200:
                if status:
                    log.surprises.append(f"get_chain {chain}: {status} {body}")
                continue
            steps: dict[str, dict[str, Any]] = {s["uuid"]: s for s in body["steps"]}
            for _ in range(WRITES_PER_VISIT):
                if think_s:
                    time.sleep(
                        min(rng.expovariate(1 / think_s), max(0.0, deadline - time.monotonic()))
                    )
                if time.monotonic() >= deadline:
                    break
                step = steps[rng.choice(list(steps))]
                action = rng.choices(actions, weights)[0]
                if action == "stale_write" and step["version"] == 1:
                    action = "patch_verdict"  # nothing older than version 1 to send yet
                patch: dict[str, Any] = {"version": step["version"]}
                if action == "stale_write":
                    # A second tab, or a double submit: a write based on the version before.
                    patch["version"] = step["version"] - 1
                if action in ("patch_text", "patch_both"):
                    edits += 1
                    patch["text"] = (
                        f"{reader.username} rewrote this ({edits}): {rng.choice(SEED_STEPS)}"
                    )
                if action in ("patch_verdict", "patch_both", "stale_write"):
                    patch["verdict"] = rng.choice(VERDICTS)
                status, body = _call(
                    client, log, action, "PATCH", f"/api/v1/steps/{step['uuid']}/", patch
                )
                _record(log, action, step, patch, status, body)
                if status == 200:
                    steps[step["uuid"]] = body
                elif status == 409 and isinstance(body, dict) and "current" in body:
                    steps[step["uuid"]] = body["current"]  # what a client does: reload, retry
    finally:
        client.close()


def _record(
    log: ReviewerLog,
    action: str,
    step: dict[str, Any],
    patch: dict[str, Any],
    status: int,
    body: Any,
) -> None:
    expected = 409 if action == "stale_write" else 200
    if status == 200:
        # Recorded even when it should not have been accepted: the database did change.
        changed = sum(1 for key in ("text", "verdict") if key in patch and patch[key] != step[key])
        log.writes.append(Write(step["uuid"], body["version"], changed, body["text"], body["verdict"]))
        sent = {key: patch[key] for key in ("text", "verdict") if key in patch}
        if any(body[key] != value for key, value in sent.items()):
            log.surprises.append(f"{action} {step['uuid']}: sent {sent}, server kept {body}")
    elif status == 409 and expected == 409:
        log.conflicts += 1
        current = body.get("current", {}) if isinstance(body, dict) else {}
        if current.get("version") != step["version"]:
            log.surprises.append(f"409 for {step['uuid']} reports {current}")
    if status and status != expected:
        log.surprises.append(f"{action} {step['uuid']} v{patch['version']}: {status} {body}")


def run_phase(
    server: Server, readers: list[Reader], count: int, seconds: float, think_s: float, seed: int
) -> Phase:
    logs = [ReviewerLog() for _ in range(count)]
    cpu_before = cpu_snapshot(server.pid)
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(
            target=review,
            args=(server.base, readers[i], deadline, seed * 1000 + i, think_s, logs[i]),
            name=f"reviewer-{i}",
            daemon=True,
        )
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline + REQUEST_TIMEOUT_S + 5 - time.monotonic()))
    elapsed = time.monotonic() - started
    cpu = cpu_share(cpu_before, cpu_snapshot(server.pid), elapsed)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        logs[0].surprises.append(f"still running after the deadline: {', '.join(stuck)}")
    return Phase(count, elapsed, logs, cpu, think_s * 1000)


# --- report ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil without floats drifting
    return sorted_values[int(rank) - 1]


def print_phase(phase: Phase) -> None:
    rate_mark = "meets" if phase.rate >= TARGET_RATE else "below"
    paced = f", mean think time {phase.think_ms:.0f} ms" if phase.think_ms else ", no think time"
    print(
        f"\n== {phase.readers} reviewer{'s' if phase.readers != 1 else ''}{paced}, "
        f"{phase.seconds:.1f} s =="
    )
    print(
        f"{phase.actions} actions, {phase.rate:.0f} actions/s "
        f"(target {TARGET_RATE:.0f}+: {rate_mark})"
    )
    print(f"{'action':<14}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for action in (*ACTIONS, None):
        values = phase.latencies(action)
        print(
            f"{action or 'all':<14}{len(values):>7}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}"
        )
    p95 = percentile(phase.latencies(), 95)
    if phase.readers == TARGET_AT:
        mark = "meets" if p95 <= TARGET_P95_MS else "misses"
        print(
            f"p95 target at {TARGET_AT} reviewers: <= {TARGET_P95_MS:.0f} ms, got {p95:.1f} ms: {mark}"
        )
    stale = len(phase.latencies("stale_write"))
    conflicts = sum(log.conflicts for log in phase.logs)
    print(f"409 Conflict: {conflicts} of {stale} deliberately stale writes")
    if phase.cpu:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in phase.cpu.items())
        print(f"CPU, in % of one core: {shares}")
        if phase.cpu["other"] > NOISY_NEIGHBOURS:
            print("  other processes were busy during this phase: its figures are not comparable")
    surprises = [s for log in phase.logs for s in log.surprises]
    print(f"unexpected answers or errors: {len(surprises)}")
    for line in surprises[:5]:
        print(f"  {line[:300]}")


def print_summary(phases: list[Phase], workers: int, threads: int, cores: int) -> None:
    print(f"\n== summary (gunicorn: {workers} workers x {threads} thread(s), {cores} cores) ==")
    print(
        f"{'reviewers':>9}{'think ms':>9}{'actions/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'Little N/X ms':>15}{'CPU: server':>13}{'postgres':>10}{'load gen':>10}{'other':>7}"
    )
    for phase in phases:
        values = phase.latencies()
        # Closed loop: mean latency + mean think time is about reviewers / throughput.
        little = 1000 * phase.readers / phase.rate if phase.rate else float("nan")
        print(
            f"{phase.readers:>9}{phase.think_ms:>9.0f}{phase.rate:>11.0f}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}{little:>15.1f}"
            + "".join(
                f"{phase.cpu.get(name, float('nan')):>{width}.0%}"
                for name, width in (
                    ("gunicorn", 13),
                    ("postgres", 10),
                    ("load generator", 10),
                    ("other", 7),
                )
            )
        )
    print(
        f"targets: p95 <= {TARGET_P95_MS:.0f} ms at {TARGET_AT} reviewers, {TARGET_RATE:.0f}+ actions/s.\n"
        f"This machine has {cores} cores, shared by the load generator (Python threads), gunicorn\n"
        "and PostgreSQL: the figures understate what the server does on a machine of its own.\n"
        f"CPU columns are % of one core ({cores * 100}% = every core busy); 'other' is unrelated.\n"
        f"With no think time the reviewers form a closed loop (mean latency ~ reviewers / rate):\n"
        f"a p95 of {TARGET_P95_MS:.0f} ms at {TARGET_AT} reviewers needs more than "
        f"{1000 * TARGET_AT / TARGET_P95_MS:.0f} actions/s (Little's law), on these 2 shared cores\n"
        "the server's saturation point is what the no-think rows measure. The paced row is the\n"
        f"target load: {TARGET_AT} reviewers pausing a random (exponential) think time between\n"
        "requests, which is what a person does, offering about the target rate together."
    )


# --- the lost-update check -------------------------------------------------------------------


def check_writes(writes: list[Write]) -> list[str]:
    """Each accepted write must show in the database: nothing lost, nothing applied twice.

    Every step belongs to one reviewer and each reviewer writes sequentially, so the versions
    the server returned for a step must climb by exactly the number of fields each PATCH changed,
    the final row must be the last write, and each field change must have its audit event.
    """
    from annotation.models import ReviewEvent, Step

    by_step: dict[str, list[Write]] = defaultdict(list)
    for write in writes:
        by_step[write.step].append(write)
    events = Counter(
        str(uuid)
        for uuid in ReviewEvent.objects.filter(action__in=["edit", "verdict"]).values_list(
            "step__uuid", flat=True
        )
    )
    problems: list[str] = []
    for step in Step.objects.filter(chain__case__source="bench").only(
        "uuid", "version", "text", "original_text", "verdict"
    ):
        uuid = str(step.uuid)
        history = sorted(by_step.pop(uuid, []), key=lambda w: w.version)
        expected_version = 1 + sum(w.changes for w in history)
        if step.version != expected_version:
            problems.append(
                f"step {uuid}: version {step.version} in the database, {expected_version} from "
                f"{len(history)} accepted writes"
            )
        version = 1
        for write in history:
            if write.version != version + write.changes:
                problems.append(
                    f"step {uuid}: a write answered version {write.version}, expected "
                    f"{version + write.changes}: another change came in between or was lost"
                )
            version = write.version
        if history:
            last = history[-1]
            if (step.text, step.verdict) != (last.text, last.verdict):
                problems.append(
                    f"step {uuid}: database has ({step.text!r}, {step.verdict}), "
                    f"last accepted write was ({last.text!r}, {last.verdict})"
                )
        elif (step.text, step.verdict) != (step.original_text, "unreviewed"):
            problems.append(f"step {uuid}: changed with no accepted write")
        if events[uuid] != expected_version - 1:
            problems.append(
                f"step {uuid}: {events[uuid]} audit events for {expected_version - 1} changes"
            )
    problems.extend(f"step {uuid}: written but not in the database" for uuid in by_step)
    return problems


# --- main ------------------------------------------------------------------------------------


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gunicorn_config() -> dict[str, Any]:
    """The settings the production line gets from gunicorn.conf.py (WEB_CONCURRENCY etc. apply)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    server = os.environ.get("DATABASE_URL")
    default_url = _with_database(server, "workbench_bench") if server else DEFAULT_DATABASE_URL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--readers", default="1,8,32", help="reviewer counts, comma-separated")
    production = gunicorn_config()
    parser.add_argument(
        "--workers",
        type=int,
        default=production["workers"],
        help="gunicorn workers (default: gunicorn.conf.py's, as in production)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=production["threads"],
        help="threads per gthread worker (default: gunicorn.conf.py's)",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause between a reviewer's writes (0: as fast as the server answers)",
    )
    parser.add_argument(
        "--paced-think-ms",
        type=float,
        default=90.0,
        help=f"after the other phases, {TARGET_AT} reviewers with this mean think time, which "
        f"offers about {TARGET_RATE:.0f}+ actions/s together: the target load (0: skip)",
    )
    parser.add_argument(
        "--database-url",
        default=default_url,
        help="database to create, use and drop (its name must end in '_bench'); "
        "default: workbench_bench on DATABASE_URL's server",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the reviewers")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in args.readers.split(",") if n.strip()]
    if not args.counts or min(args.counts) < 1 or args.seconds <= 0:
        parser.error("--readers needs positive counts and --seconds a positive length")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = _cores()
    var_dir = Path(tempfile.mkdtemp(prefix="review-load-"))
    phases: list[Phase] = []
    try:
        with bench_database(args.database_url) as database_url:
            env = server_env(database_url, var_dir)
            started = time.monotonic()
            migrate(env)
            setup_django(env)
            needed = max(*args.counts, TARGET_AT if args.paced_think_ms > 0 else 1)
            readers = seed(needed, CHAINS_PER_READER, STEPS_PER_CHAIN)
            print(
                f"Seeded {len(readers)} radiologists x {CHAINS_PER_READER} chains x "
                f"{STEPS_PER_CHAIN} steps in {time.monotonic() - started:.1f} s "
                f"(migrate included)."
            )
            probe = (readers[0].token, readers[0].chains[0])
            with gunicorn(
                env, args.workers, args.threads, var_dir / "gunicorn.log", probe
            ) as server:
                print(
                    f"gunicorn reasoner_site.wsgi at {server.base}: {args.workers} workers x "
                    f"{args.threads} thread(s), DEBUG off; {cores} cores shared with this load "
                    "generator and PostgreSQL."
                )
                warm_up(server.base, readers, requests_each=5, threads=2 * args.workers)
                plan = [(count, args.think_ms) for count in args.counts]
                if args.paced_think_ms > 0:
                    plan.append((TARGET_AT, args.paced_think_ms))
                for count, think_ms in plan:
                    phase = run_phase(
                        server, readers, count, args.seconds, think_ms / 1000, args.seed
                    )
                    phases.append(phase)
                    print_phase(phase)
            print_summary(phases, args.workers, args.threads, cores)
            writes = [write for phase in phases for log in phase.logs for write in log.writes]
            problems = check_writes(writes)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    surprises = sum(len(log.surprises) for phase in phases for log in phase.logs)
    print(
        f"\nLost-update check over {len(writes)} accepted writes: "
        f"{'PASS' if not problems else f'FAIL ({len(problems)} problems)'}"
    )
    for line in problems[:10]:
        print(f"  {line}")
    if surprises:
        print(f"({surprises} unexpected answers or errors during the run: see each phase above)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
