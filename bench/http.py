"""HTTP benchmark: the inbox, the task page and task completion under concurrent load.

Sets up its own SQLite database with the demo department, real expense claims waiting for the
副经理's approval and synthetic open tasks up to ``--tasks`` (100,000 by default) spread over
the roles, serves the web app with gunicorn (``--workers``, 2 by default) and drives it from
threads in this process (so the load generator shares the machine, as the issue asks). Prints
requests per second and p50/p95/p99 latencies; with ``--json`` the last line is one JSON object.
Not a timed test; run it on an otherwise idle machine. Exits non-zero when a request fails, a
completion did not complete its task, or a figure is missing; ``--smoke`` runs the same code on
a few hundred tasks for a second per page (CI runs it: ``make bench-smoke``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is named like the standard library's package: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import figures
from engine import case_files, runtime
from engine.config import Settings
from engine.definitions import registry
from engine.people import identity
from engine.storage.db import Database
from engine.storage.models import HumanTask
from tests.expense_claims import claim_data

ROLES = ("DDM", "OPS", "SALES", "CS", "FIN_ACC", "ARC", "CMP", "DM")
SMOKE = {"tasks": 300, "cases": 3, "clients": 2, "seconds": 1.0}


# --- the database ---


def build_database(path: Path, total_tasks: int, real_cases: int) -> list[int]:
    """The demo department, ``real_cases`` claims waiting for DDM, synthetic tasks up to the total.

    Returns the ids of the real open approval tasks (for the task page and completion).
    """
    settings = replace(Settings.from_environment(), database_url=f"sqlite:///{path}")
    db = Database(settings.database_url)
    db.upgrade()
    with db.unit_of_work() as session:
        identity.load_department(session, settings.demo_data)
        case_files.load_demo(session, settings.demo_case_files)
        registry.deploy_all(
            session, identity.SYSTEM, registry.read_directory(settings.processes_dir)
        )
    with db.read() as session:
        sales = identity.get_actor(session, "sales1")
        approver = identity.get_actor(session, "ddm1")
    day = datetime.now(UTC).date() - timedelta(days=2)
    real = []
    for _ in range(real_cases):
        case = runtime.start_instance(db, sales, "expense_reimbursement")
        claim = claim_data("800.00", "办公", day=day.isoformat())  # an invoice serves one claim
        runtime.complete_task(db, sales, case.open_task_ids[0], claim)
        for task_id in runtime.get_instance(db, case.id).summary.open_task_ids:
            runtime.claim_task(db, approver, task_id)  # completion is measured alone
            real.append(task_id)
    synthetic = max(0, total_tasks - len(real))
    now = datetime.now(UTC)
    with db.engine.begin() as connection:
        cases = [row[0] for row in connection.exec_driver_sql("SELECT id FROM process_instance")]
        rows = [
            (
                cases[i % len(cases)],
                str(uuid.uuid4()),
                "approve_ddm",
                f"审批任务 {i}",
                "副经理",
                ROLES[i % len(ROLES)],
                "expense_approval_decision",
                False,
                "open",
                (
                    due := (now + timedelta(hours=i % 500 - 100))
                    .replace(tzinfo=None)
                    .isoformat(sep=" ")
                ),
                due,
                (now - timedelta(minutes=i % 10_000)).replace(tzinfo=None).isoformat(sep=" "),
            )
            for i in range(synthetic)
        ]
        connection.exec_driver_sql(
            "INSERT INTO human_task (instance_id, spiff_task_id, bpmn_id, name, lane,"
            " candidate_role, form_key, is_approval, status, due_at, sort_due_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.exec_driver_sql("ANALYZE")
    db.dispose()
    return real


# --- the server ---


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(path: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPSFLOW_DATABASE_URL": f"sqlite:///{path}",
        "OPSFLOW_SECRET_KEY": "bench-secret",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "serve", "--port", str(port),
         "--workers", str(workers), "--no-worker", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


# --- the client ---


class Session:
    """One keep-alive connection with a logged-in session cookie."""

    def __init__(self, port: int, username: str):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""
        page = self.get("/login")[1]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("the login page has no CSRF token")
        self.csrf = token.group(1)
        status, _ = self.post("/login", {"username": username, "password": f"{username}-demo-2026"})
        if status != 302:
            raise RuntimeError(f"login failed: {status}")

    def _send(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": self.cookie}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, text

    def get(self, path: str) -> tuple[int, str]:
        return self._send("GET", path)

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        return self._send("POST", path, urlencode({**fields, "csrf_token": self.csrf}))


def load(sessions: list[Session], request: Any, seconds: float) -> dict[str, float]:
    """A thread per session, each calling ``request(session, i)`` for ``seconds``."""
    clients = len(sessions)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(session: Session, offset: int) -> None:
        i = offset
        mine: list[float] = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            ok = request(session, i)
            if ok is None:  # nothing left to do
                break
            mine.append(time.perf_counter() - started)
            if not ok:
                errors[0] += 1
            i += clients
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(s, k)) for k, s in enumerate(sessions)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begun
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "requests": len(ordered),
        "rps": len(ordered) / elapsed if elapsed else 0.0,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "errors": errors[0],
    }


def measure(port: int, real: list[int], clients: int, seconds: float) -> dict[str, Any]:
    """The inbox, the task page, then completing the real approvals; each under ``clients``."""
    # one login per client (the login rate limit allows ten a minute per address)
    sessions = [Session(port, "ddm1") for _ in range(clients)]
    inbox = load(sessions, lambda s, i: s.get("/?tab=claimable")[0] == 200, seconds)
    task_page = load(
        sessions, lambda s, i: s.get(f"/tasks/{real[i % len(real)]}")[0] == 200, seconds
    )
    queue, taking, completed = list(real), threading.Lock(), []

    def complete(session: Session, i: int) -> bool | None:
        with taking:
            if not queue:
                return None
            task_id = queue.pop()
        if session.post(f"/tasks/{task_id}", {"decision": "同意"})[0] != 302:
            return False
        completed.append(task_id)
        return True

    completion = load(sessions, complete, seconds)
    return {"inbox": inbox, "task_page": task_page, "complete": completion, "done": completed}


def not_done(path: Path, task_ids: list[int]) -> int:
    """How many of the tasks a 302 answered for are not done in the database."""
    db = Database(f"sqlite:///{path}")
    with db.read() as session:
        done = session.scalar(
            select(func.count())
            .select_from(HumanTask)
            .where(HumanTask.id.in_(task_ids), HumanTask.status == runtime.DONE)
        )
    db.dispose()
    return len(task_ids) - (done or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="open tasks in the database")
    parser.add_argument(
        "--cases", type=int, default=300, help="real expense claims waiting for DDM"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--seconds", type=float, default=15.0, help="per measured page")
    parser.add_argument("--smoke", action="store_true", help=f"for CI: {SMOKE}")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        started = time.perf_counter()
        real = build_database(path, args.tasks, args.cases)
        print(
            f"database: {args.tasks} open tasks ({len(real)} real) in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        server = start_server(path, port, args.workers)
        try:
            pages = measure(port, real, args.clients, args.seconds)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        lost = not_done(path, pages["done"])

    inbox, task_page, completion = pages["inbox"], pages["task_page"], pages["complete"]
    results = {
        "open_tasks": args.tasks,
        "workers": args.workers,
        "clients": args.clients,
        "inbox_rps": round(inbox["rps"], 1),
        "inbox_p50_ms": round(inbox["p50_ms"], 1),
        "inbox_p95_ms": round(inbox["p95_ms"], 1),
        "inbox_p99_ms": round(inbox["p99_ms"], 1),
        "task_page_rps": round(task_page["rps"], 1),
        "task_page_p95_ms": round(task_page["p95_ms"], 1),
        "task_page_p99_ms": round(task_page["p99_ms"], 1),
        "complete_rps": round(completion["rps"], 1),
        "complete_p95_ms": round(completion["p95_ms"], 1),
        "complete_p99_ms": round(completion["p99_ms"], 1),
    }
    failed = {
        name: page["errors"]
        for name, page in (("inbox", inbox), ("task page", task_page), ("completion", completion))
    }
    problems = [f"{n} {name} requests failed" for name, n in failed.items() if n]
    if lost:
        problems.append(f"{lost} completions answered 302 but left their task open")
    figures.report(results, as_json=args.json, problems=problems)


if __name__ == "__main__":
    main()
