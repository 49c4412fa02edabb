"""The notification centre over HTTP: the list, the menu's unread count, mark read, the choices page."""

from __future__ import annotations

import re

import pytest

from engine import notifications, runtime
from engine.storage.db import Database
from tests.conftest import ActorOf, work
from tests.expense_claims import claim_data
from tests.webapp.conftest import Login

pytestmark = pytest.mark.usefixtures("frozen_clock")


def submit_claim(db: Database, actor: ActorOf) -> None:
    case = runtime.start_instance(db, actor("sales1"), "expense_reimbursement")
    work(db, actor("sales1"), case.id, "submit_claim", claim_data())


def test_the_centre_lists_a_new_task_and_the_menu_counts_it_until_read(
    db: Database, actor: ActorOf, login: Login
) -> None:
    ddm1 = login("ddm1")
    assert 'id="notification-count"' not in ddm1.get("/notifications/count").get_data(as_text=True)
    submit_claim(db, actor)
    count = ddm1.get("/notifications/count").get_data(as_text=True)
    assert re.search(r'id="notification-count"[^>]*>1<', count)
    page = ddm1.get("/notifications").get_data(as_text=True)
    assert "新任务「副经理审批」进入您的角色队列" in page
    [item] = notifications.list_for(db, actor("ddm1").id)
    response = ddm1.post(f"/notifications/{item.id}/read", data={"csrf_token": ddm1.csrf})
    assert response.status_code == 302
    assert 'id="notification-count"' not in ddm1.get("/notifications/count").get_data(as_text=True)
    assert "已读" in ddm1.get("/notifications").get_data(as_text=True)


def test_the_centre_speaks_the_readers_language(db: Database, actor: ActorOf, login: Login) -> None:
    ddm1 = login("ddm1")
    submit_claim(db, actor)
    ddm1.post("/language", data={"language": "en", "csrf_token": ddm1.csrf, "next": "/"})
    page = ddm1.get("/notifications").get_data(as_text=True)
    assert "New task “副经理审批” in your role&#39;s queue" in page
    assert "Mark all read" in page


def test_someone_elses_notification_cannot_be_marked_read(
    db: Database, actor: ActorOf, login: Login
) -> None:
    submit_claim(db, actor)
    [item] = notifications.list_for(db, actor("ddm1").id)
    ddm2 = login("ddm2")
    ddm2.post(f"/notifications/{item.id}/read", data={"csrf_token": ddm2.csrf})
    assert notifications.unread_count(db, actor("ddm1").id) == 1


def test_the_choices_page_keeps_what_each_user_wants(
    db: Database, actor: ActorOf, login: Login
) -> None:
    ddm1 = login("ddm1")
    page = ddm1.get("/notifications/preferences").get_data(as_text=True)
    assert page.count('type="checkbox"') == 2 * len(notifications.KINDS)
    response = ddm1.post(
        "/notifications/preferences",
        data={"csrf_token": ddm1.csrf, "email": ["queue"], "language": "en"},
    )
    assert response.status_code == 302
    prefs, language = notifications.preferences(db, actor("ddm1").id)
    assert language == "en"
    assert [p.kind for p in prefs if p.email] == ["queue"]
    assert not any(p.in_app for p in prefs)
    submit_claim(db, actor)
    assert "没有通知" in ddm1.get("/notifications").get_data(as_text=True)


def test_a_wrong_choice_is_a_clear_error_and_changes_nothing(
    db: Database, actor: ActorOf, login: Login
) -> None:
    ddm1 = login("ddm1")
    response = ddm1.post(
        "/notifications/preferences",
        data={"csrf_token": ddm1.csrf, "in_app": ["no_such_kind"], "language": "zh"},
    )
    assert response.status_code == 422
    assert "选项无效" in response.get_data(as_text=True)
    prefs, _language = notifications.preferences(db, actor("ddm1").id)
    assert all(p.in_app and p.email for p in prefs)
