"""Take the README's screenshots: the inbox, a task page and a case page, in zh-CN.

Builds a throwaway SQLite database with the demo department, starts a few cases, serves the web
app in a thread and photographs it with Debian's chromium (``make screenshots``).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from engine import case_files, runtime
from engine.config import Settings
from engine.definitions import registry
from engine.people import identity
from engine.storage.db import Database
from tests.expense_claims import claim_data
from webapp import create_app

OUT = ROOT / "docs" / "img"


def demo_cases(db: Database) -> int:
    with db.read() as session:
        sales, ddm = identity.get_actor(session, "sales1"), identity.get_actor(session, "ddm1")
    claims: list[int] = []
    for n, (amount, category) in enumerate(
        (("12000.00", "差旅"), ("800.00", "办公"), ("3600.00", "培训"))
    ):
        case = runtime.start_instance(
            db, sales, "expense_reimbursement", business_key=f"EXP-2026-00{n + 1}"
        )
        claim = claim_data(
            amount, category, day=(datetime.now(UTC).date() - timedelta(days=3)).isoformat()
        )
        runtime.complete_task(db, sales, case.open_task_ids[0], claim)
        claims.append(case.id)
    lead = runtime.start_instance(db, sales, "sales", business_key="SL-2026-0001")
    runtime.complete_task(
        db, sales, lead.open_task_ids[0],
        {"customer_name": "王秀英", "mobile": "13912345678", "channel": "线下活动",
         "pi_notice_given": "是", "contact_consent": True},
    )  # fmt: skip
    first = claims[0]
    for task_id in runtime.get_instance(db, first).summary.open_task_ids:
        runtime.claim_task(db, ddm, task_id)
    return first


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        settings = replace(
            Settings.from_environment(),
            database_url=f"sqlite:///{folder}/shots.sqlite",
            secret_key=secrets.token_hex(16),
        )
        db = Database(settings.database_url)
        db.upgrade()
        with db.unit_of_work() as session:
            identity.load_department(session, settings.demo_data)
            case_files.load_demo(session, settings.demo_case_files)
            registry.deploy_all(
                session, identity.SYSTEM, registry.read_directory(settings.processes_dir)
            )
        case_id = demo_cases(db)
        app = create_app(settings, db=db)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(
                base_url=base, viewport={"width": 1280, "height": 860}, locale="zh-CN"
            )
            page.goto("/login")
            page.fill("#username", "ddm1")
            page.fill("#password", "ddm1-demo-2026")
            page.click("button[type=submit]")
            page.goto("/?tab=mine")
            page.screenshot(path=str(OUT / "inbox.png"))
            page.locator("#task-list a").first.click()
            page.wait_for_selector("#diagram[data-ready=true]")
            page.screenshot(path=str(OUT / "task.png"), full_page=True)
            page.goto(f"/cases/{case_id}")
            page.wait_for_selector("#diagram[data-ready=true]")
            page.screenshot(path=str(OUT / "case.png"), full_page=True)
            page.goto("/notifications")
            page.screenshot(path=str(OUT / "notifications.png"))
            browser.close()
        server.shutdown()
        db.dispose()


if __name__ == "__main__":
    main()
