"""Take the README's screenshots: the inbox, a task page and a case page, in zh-CN (desktop and a 390 px phone).

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
from engine.runtime.services import attachments
from engine.storage.db import Database
from tests.expense_claims import claim_data
from webapp import create_app

OUT = ROOT / "docs" / "img"


def invoice_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a few lines of text, for the screenshots' attached invoice."""
    text = "BT /F1 14 Tf 56 780 Td 20 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        " /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


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
        task_id = case.open_task_ids[0]
        invoice = invoice_pdf(["INVOICE " + claim["invoices"][0]["invoice_no"], f"CNY {amount}"])
        stored = attachments.store_file(db, sales, task_id, f"发票-{n + 1}.pdf", invoice)
        runtime.complete_task(db, sales, task_id, {**claim, "attachments": [stored.sha256]})
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
            # the same pages on a 390 px phone
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto("/?tab=mine")
            page.screenshot(path=str(OUT / "inbox_390.png"), full_page=True)
            page.locator("#task-list a").first.click()
            page.wait_for_selector("#diagram[data-ready=true]")
            page.screenshot(path=str(OUT / "task_390.png"), full_page=True)
            page.goto(f"/cases/{case_id}")
            page.wait_for_selector("#diagram[data-ready=true]")
            page.screenshot(path=str(OUT / "case_390.png"), full_page=True)
            page.goto("/notifications")
            page.screenshot(path=str(OUT / "notifications.png"))
            browser.close()
        server.shutdown()
        db.dispose()


if __name__ == "__main__":
    main()
