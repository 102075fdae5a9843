"""The HTML pages, server side, on SQLite and PostgreSQL: each page for each role, the walls
(others' tickets are 404, admin pages 403), CSRF on every form, errors in Chinese."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from httpx2 import Response
from sqlalchemy import func, select

from closeloop import escalation, feedback
from closeloop.app import App
from closeloop.errors import CodedError
from closeloop.gridfile import CHANNELS
from closeloop.models import evidence, grids, people, tickets
from closeloop.tickets import Invalid, NotPermitted
from closeloop.web import audit, auth, i18n
from closeloop.web.auth import LoginFailed, TooManyAttempts
from closeloop.workflow import StepNotAllowed, load_workflow
from tests.exam_data import APRIL
from tests.webtools import (
    MICRO,
    OTHER_MICRO,
    PASSWORD,
    PNG,
    VILLAGE,
    Browser,
    Web,
    browser,
    flash,
)

LEADER, VILLAGE_LEADER, OTHER_LEADER, SUPERVISOR, ADMIN = (
    "yantou.g3",
    "yantou.lead",
    "caoyuan.g1",
    "duban.wang",
    "admin",
)
REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "closeloop" / "web" / "templates"
PAGES = REPO / "closeloop" / "web" / "pages"


def report(b: Browser, **fields: Any) -> tuple[str, str]:
    data = {"category": "random_piling", "grid": MICRO, "title": "河边垃圾堆", **fields}
    r = b.post("/report", data, files=[("photos", ("river.png", PNG, "image/png"))])
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/track/([^?]+)\?secret=([^&]+)&new=1", r.headers["location"])
    assert found, r.headers["location"]
    return found.group(1), found.group(2)


def state_of(app: App, ref: str) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(select(tickets.c.state).where(tickets.c.ref == ref)).scalar_one())


def step(
    b: Browser, ref: str, name: str, data: dict[str, Any] | None = None, **kw: Any
) -> Response:
    token = b.csrf(f"/tickets/{ref}")
    return b.post(f"/tickets/{ref}/steps/{name}", data, token=token, **kw)


def forms_on(r: Response) -> set[str]:
    return set(re.findall(r'id="step-([a-z_]+)"', r.text))


# --- the catalogue -----------------------------------------------------------------------------


def test_every_key_the_pages_use_is_in_both_languages() -> None:
    used = set()
    for path in [*TEMPLATES.glob("*.html"), *PAGES.glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text()))
    assert used, "no keys found: the pattern is wrong"
    built = {k for k in used if k.endswith(".")}  # t("help." ~ step): checked below
    for locale in i18n.LOCALES:
        missing = sorted(k for k in used - built if k not in i18n.MESSAGES[locale])
        assert not missing, f"{locale} lacks {missing}"
    assert built == {
        "admin.role.",
        "channel.",
        "ext.",
        "help.",
        "exam.sheet.",
        "exam.ev.",
        "exam.st.",
        "sat.",
    }
    workflow = load_workflow(REPO / "workflows" / "environmental.toml")
    wanted = [f"help.{s}" for s in workflow.steps if s != "submit"]
    wanted += [f"done.{s}" for s in workflow.steps if s != "submit"]
    wanted += [f"channel.{c}" for c in CHANNELS] + ["admin.role.admin", "admin.role.supervisor"]
    wanted += [f"ext.{s}" for s in ("pending", "approved", "refused", "lapsed", "all")]
    wanted += [f"exam.sheet.{s}" for s in ("basic", "required", "bonus")]
    wanted += [f"exam.ev.{s}" for s in ("saved", "submitted", "reopened", "imported")]
    wanted += [f"exam.st.{s}" for s in ("scored", "submitted", "in_progress", "missing")]
    wanted += [f"done.{s}" for s in ("exam_saved", "exam_submitted", "exam_reopened")]
    wanted += [f"done.{s}" for s in ("exam_planned", "exam_published", "case_closed")]
    wanted += [f"sat.{s}" for s in feedback.SATISFACTION] + ["done.rated"]
    for locale in i18n.LOCALES:
        assert not [k for k in wanted if k not in i18n.MESSAGES[locale]], locale


def test_both_languages_take_the_same_placeholders() -> None:
    for key, zh in i18n.MESSAGES["zh_CN"].items():
        if key.startswith("time."):  # dates: each language picks from the same values
            continue
        en = i18n.MESSAGES["en"][key]
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key


def test_time_left_reads_at_a_glance() -> None:
    h, m = 3600, 60
    assert i18n.time_left(3 * h + 20 * m, "zh_CN") == "剩 3小时20分"
    assert i18n.time_left(-2 * h, "zh_CN") == "超时 2小时"
    assert i18n.time_left(-(26 * h + 5 * m), "zh_CN") == "超时 1天2小时"
    assert i18n.time_left(45 * m, "zh_CN") == "剩 45分"
    assert i18n.time_left(3 * h + 20 * m, "en") == "3 h 20 min left"
    assert i18n.time_left(-2 * h, "en") == "2 h late"
    assert i18n.time_left(None, "zh_CN") == ""


def test_domain_errors_are_said_in_chinese() -> None:
    def zh(error: CodedError) -> str:
        return error.text("zh_CN", words=lambda k: f"<{k}>")

    ref = "EP-2026-000001"
    assert "不能由您本人核查" in zh(
        NotPermitted("step.own_fix", handle="yantou.lead", ref=ref, step="verify")
    )
    assert zh(
        NotPermitted("step.not_permitted", handle="g3", step="verify", ref=ref, who="a supervisor")
    ) == ("您无权对这个问题执行“<verify>”。")
    assert "“<assigned>”" in zh(StepNotAllowed("verify", "assigned", ("fixed",)))
    assert zh(Invalid("step.needs", step="fix", fields=("--note",))) == "请填写：说明。"
    needs = Invalid("step.needs", step="defer", fields=("--reason", "--review-on"))
    assert zh(needs) == "请填写：理由、复查日期。"
    assert str(needs) == "'defer' needs --reason, --review-on"
    assert zh(LoginFailed("auth.login_failed")) == "账号或密码不对。"
    assert "15 分钟" in zh(TooManyAttempts("auth.login_limited_here", 900, handle="x", minutes=15))
    # What carries no code (the framework's own words) is shown as it is, in a Chinese frame.
    assert i18n.http_error("zh_CN", "something new went wrong") == (
        "操作没有完成：something new went wrong"
    )


# --- pages for everyone ------------------------------------------------------------------------


def test_home_is_chinese_and_english_is_a_switch_that_stays(web: Web) -> None:
    b = Browser(web)
    r = b.get("/")
    assert r.status_code == 200 and '<html lang="zh-CN">' in r.text and "我要上报问题" in r.text
    r = b.get("/?lang=en")
    assert '<html lang="en">' in r.text and "Report a problem" in r.text
    assert "closeloop_lang=en" in r.headers["set-cookie"]
    assert "Report a problem" in b.get("/report").text  # the cookie keeps the choice
    assert "我要上报问题" in b.get("/?lang=zh").text
    assert "上报问题" in b.get("/report").text


def test_the_css_is_served_and_nothing_comes_from_elsewhere(web: Web) -> None:
    b = Browser(web)
    css = b.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert b.get("/static/site.js").status_code == 200
    assert b.get("/static/../pages.py").status_code == 404
    page = b.get("/report").text
    assert not re.search(r'(src|href)="(https?:)?//', page), "a resource from another site"


def test_pages_are_not_in_the_api_schema(web: Web) -> None:
    paths = web.client.get("/openapi.json").json()["paths"]
    assert "/inbox" not in paths and "/report" not in paths and "/api/inbox" in paths


def test_errors_on_pages_are_pages_and_on_the_api_json(web: Web) -> None:
    b = Browser(web)
    r = b.get("/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "找不到这个页面" in flash(r)
    r = b.get("/tickets/EP-2026-000001/steps/fix")
    assert r.status_code == 405 and "不能直接打开" in flash(r)
    api = b.get("/api/tickets/EP-2026-999999")
    assert api.headers["content-type"].startswith("application/json")


# --- reporters ---------------------------------------------------------------------------------


def test_report_form_offers_categories_and_the_grid_picker(web: Web) -> None:
    page = Browser(web).get("/report").text
    assert 'value="random_piling"' in page and "乱堆乱放" in page
    assert f'<option value="{MICRO}"' in page and "堰头村第3户组" in page
    # The village select filters with the script; without it the grouped list is enough.
    assert 'id="village"' in page and f'data-small="{VILLAGE}"' in page
    assert "堰头村（不清楚具体户组）" in page


def test_a_report_with_a_photo_gives_a_link_to_keep(web: Web) -> None:
    b = Browser(web)
    ref, secret = report(
        b, address="村口石桥", reporter_name="李大伯", reporter_phone="13900000000"
    )
    r = b.get(f"/track/{ref}?secret={secret}&new=1")
    assert r.status_code == 200
    assert "请保存此链接" in r.text and ref in r.text and secret in r.text
    assert f"/track/{ref}?secret={secret}" in r.text
    assert "待整改" in r.text and "堰头村第3户组" in r.text
    photo = re.search(r'<img src="(/api/evidence/\d+\?secret=[^"]+)"', r.text)
    assert photo, "the reporter's photo is not shown"
    got = b.get(html.unescape(photo.group(1)))
    assert got.status_code == 200 and got.content == PNG
    # The photo is served to the reporter and staff only, and kept outside the database.
    bare = html.unescape(photo.group(1)).split("?")[0]
    assert Browser(web).get(bare).status_code == 404
    with web.app.engine.connect() as conn:
        stored = conn.execute(select(evidence.c.stored_name)).scalar_one()
    assert (web.app.settings.evidence_dir / stored).read_bytes() == PNG


def test_a_bad_report_is_shown_again_with_what_to_correct(web: Web) -> None:
    b = Browser(web)
    r = b.post("/report", {"category": "random_piling", "grid": MICRO, "address": "桥头"})
    assert r.status_code == 422
    assert "请填写“一句话说明问题”" in flash(r)
    assert 'value="桥头"' in r.text  # what was typed is kept
    r = b.post(
        "/report",
        {"category": "road", "grid": MICRO, "title": "路坏了"},
        files=[("photos", ("x.png", b"not a picture", "image/png"))],
    )
    assert r.status_code == 422 and "照片只能是" in flash(r)
    with web.app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tickets)).scalar_one() == 0


def test_a_report_without_the_csrf_token_is_refused(web: Web) -> None:
    b = Browser(web)
    b.get("/report")
    r = b.post("/report", {"category": "road", "grid": MICRO, "title": "路坏了"}, token=None)
    assert r.status_code == 403 and "页面已过期" in flash(r)
    r = b.post("/report", {"category": "road", "grid": MICRO, "title": "路坏了"}, token="forged")
    assert r.status_code == 403


def test_following_a_report_needs_its_secret(web: Web) -> None:
    b = Browser(web)
    ref, secret = report(b)
    r = b.get(f"/track?ref={ref.lower()}&secret={secret}")
    assert r.status_code == 303 and r.headers["location"] == f"/track/{ref}?secret={secret}"
    r = b.get(f"/track/{ref}?secret=wrong-secret-123")
    assert r.status_code == 404 and "没有找到这个问题" in flash(r)
    assert "请保存此链接" not in b.get(f"/track/{ref}?secret={secret}").text


# --- login -------------------------------------------------------------------------------------


def test_login_says_what_went_wrong_and_is_limited(web: Web) -> None:
    auth.set_password(web.app, LEADER, PASSWORD)
    b = Browser(web)
    r = b.post("/login?next=/inbox", {"handle": LEADER, "password": "wrong", "next": "/inbox"})
    assert r.status_code == 401 and "账号或密码不对" in flash(r)
    assert 'value="/inbox"' in r.text  # where to go after logging in is kept
    for _ in range(4):
        b.post("/login", {"handle": LEADER, "password": "wrong"})
    r = b.post("/login", {"handle": LEADER, "password": PASSWORD})
    assert r.status_code == 429 and "登录失败次数太多" in flash(r)
    assert int(r.headers["retry-after"]) > 0


def test_login_goes_where_asked_and_logout_ends_the_session(web: Web) -> None:
    b = Browser(web)
    r = b.get("/inbox")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Finbox"
    auth.set_password(web.app, LEADER, PASSWORD)
    r = b.post("/login", {"handle": LEADER, "password": PASSWORD, "next": "/inbox"})
    assert r.headers["location"] == "/inbox"
    assert b.get("/inbox").status_code == 200
    assert b.get("/").headers["location"] == "/inbox"
    token = b.csrf("/inbox")
    r = b.post("/logout", token=token)
    assert r.status_code == 303
    assert b.get("/inbox").status_code == 303
    # A form sent after the session ended leads back to its page after logging in.
    r = b.post("/tickets/EP-2026-000001/steps/fix", {"note": "x"}, token=token)
    assert r.headers["location"] == "/login?next=%2Ftickets%2FEP-2026-000001"


# --- grid leaders ------------------------------------------------------------------------------


def test_the_inbox_puts_the_soonest_deadline_first_with_time_left(web: Web) -> None:
    reporter = Browser(web)
    piling, _ = report(reporter, title="垃圾堆")  # 24 hours to fix
    parking, _ = report(reporter, category="random_parking", title="乱停车")  # 2 hours
    leader = browser(web, LEADER)
    page = leader.get("/inbox").text
    assert page.index(parking) < page.index(piling)
    assert "剩 2小时" in page and "剩 1天" in page
    web.clock.advance(timedelta(hours=4, minutes=30))
    page = leader.get("/inbox").text
    assert "超时 2小时30分" in page and "剩 19小时30分" in page
    assert "1 件已超时" in page


def test_a_leader_sees_only_their_grids(web: Web) -> None:
    ref, _ = report(Browser(web))
    other = browser(web, OTHER_LEADER)
    assert ref not in other.get("/inbox").text
    assert ref not in other.get("/tickets").text
    r = other.get(f"/tickets/{ref}")
    assert r.status_code == 404 and "没有找到这个问题" in flash(r)
    token = other.csrf("/inbox")
    r = other.post(f"/tickets/{ref}/steps/fix", {"note": "x"}, token=token)
    assert r.status_code == 404 and state_of(web.app, ref) == "assigned"
    assert other.get("/admin").status_code == 403
    assert other.get("/reports").status_code == 403
    assert Browser(web).get(f"/tickets/{ref}").status_code == 303  # anonymous: log in first


def test_the_fixer_cannot_verify_and_a_leader_above_closes(web: Web) -> None:
    reporter = Browser(web)
    ref, secret = report(reporter)
    leader = browser(web, LEADER)
    page = leader.get(f"/tickets/{ref}")
    assert forms_on(page) >= {"fix", "reassign", "request_extension"}
    assert "verify" not in forms_on(page) and "close" not in forms_on(page)
    assert "剩 1天" in page.text and "现在要做" in page.text

    r = step(
        leader,
        ref,
        "fix",
        {"note": "已清理"},
        files=[("evidence", ("after.png", PNG + b"!", "image/png"))],
    )
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{ref}?done=fix"
    page = leader.get(r.headers["location"])
    assert "已提交整改，等待上级核查" in flash(page, "ok")
    assert "已清理" in page.text and page.text.count('<img src="/api/evidence/') == 2
    assert not forms_on(page) & {"verify", "reject", "close"}
    r = step(leader, ref, "verify")
    assert r.status_code == 403 and "您无权对这个问题执行“核查通过”" in flash(r)
    assert state_of(web.app, ref) == "fixed"

    above = browser(web, VILLAGE_LEADER)
    assert ref in above.get("/inbox").text
    assert forms_on(above.get(f"/tickets/{ref}")) >= {"verify", "reject"}
    r = step(above, ref, "verify", {"note": "现场已看"})
    assert r.status_code == 303 and state_of(web.app, ref) == "verified"
    assert "close" in forms_on(above.get(f"/tickets/{ref}"))
    r = step(above, ref, "close")
    assert r.status_code == 303 and state_of(web.app, ref) == "closed"
    assert "已销号，问题办结" in flash(above.get(r.headers["location"]), "ok")
    track = reporter.get(f"/track/{ref}?secret={secret}")
    assert "已销号" in track.text and "感谢您的监督" in track.text


def test_a_leader_who_fixed_it_may_not_verify_it(web: Web) -> None:
    ref, _ = report(Browser(web))
    above = browser(web, VILLAGE_LEADER)
    assert step(above, ref, "fix", {"note": "我亲自清理"}).status_code == 303
    page = above.get(f"/tickets/{ref}")
    assert "verify" not in forms_on(page)
    r = step(above, ref, "verify")
    assert r.status_code == 403 and "不能由您本人核查" in flash(r)
    assert state_of(web.app, ref) == "fixed"


def test_a_step_refused_keeps_the_form_and_says_why(web: Web) -> None:
    ref, _ = report(Browser(web))
    leader = browser(web, LEADER)
    r = step(leader, ref, "fix", {"note": ""})
    assert r.status_code == 422 and "请填写：说明" in flash(r)
    r = step(leader, ref, "reassign", {"to_grid": MICRO, "note": "试试"})
    assert r.status_code == 422 and "问题已经在这个网格了" in flash(r)
    assert '<details class="more" open>' in r.text  # the failed step's form stays open
    # The same errors by their codes in English: the words the command line and the API use.
    leader.get("/?lang=en")
    r = step(leader, ref, "reassign", {"to_grid": MICRO, "note": "试试"})
    assert r.status_code == 422 and flash(r).endswith(f"{ref} already belongs to grid {MICRO}")
    r = step(leader, ref, "close")
    assert r.status_code == 409 and f"cannot close {ref} that is assigned" in flash(r)
    r = leader.post(f"/tickets/{ref}/steps/fix", {"note": "x"}, token=None)
    assert r.status_code == 403 and state_of(web.app, ref) == "assigned"


def test_titles_are_escaped(web: Web) -> None:
    ref, _ = report(Browser(web), title="<script>alert(1)</script>")
    page = browser(web, LEADER).get(f"/tickets/{ref}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page


def test_reassigning_out_of_ones_grids_returns_to_the_inbox(web: Web) -> None:
    ref, _ = report(Browser(web))
    leader = browser(web, LEADER)
    r = step(leader, ref, "reassign", {"to_grid": OTHER_MICRO})
    assert r.status_code == 303 and r.headers["location"] == "/inbox?done=reassign"
    assert "已改派" in flash(leader.get(r.headers["location"]), "ok")
    assert leader.get(f"/tickets/{ref}").status_code == 404
    assert ref in browser(web, OTHER_LEADER).get("/inbox").text


# --- supervisors -------------------------------------------------------------------------------


def test_an_extension_is_asked_on_the_ticket_and_decided_on_the_list(web: Web) -> None:
    ref, _ = report(Browser(web))
    leader = browser(web, LEADER)
    page = leader.get(f"/tickets/{ref}").text
    until = re.search(r'<select name="until" required>\s*<option value="([^"]+)"', page)
    assert until, "no choice of dates for the extension"
    r = step(leader, ref, "request_extension", {"reason": "需要挖机", "until": until.group(1)})
    assert r.status_code == 303, r.text
    assert "request_extension" not in forms_on(leader.get(f"/tickets/{ref}"))

    sup = browser(web, SUPERVISOR)
    listing = sup.get("/extensions")
    assert ref in listing.text and "需要挖机" in listing.text
    assert f'action="/tickets/{ref}/steps/approve_extension?back=/extensions"' in listing.text
    # The leader sees the request but no buttons to decide it.
    assert "approve_extension" not in leader.get("/extensions").text
    token = sup.csrf("/extensions")
    r = sup.post(f"/tickets/{ref}/steps/refuse_extension?back=/extensions", {}, token=token)
    assert r.status_code == 422 and "请填写：理由" in flash(r) and ref in flash(r)
    r = sup.post(f"/tickets/{ref}/steps/approve_extension?back=/extensions", {}, token=token)
    assert r.status_code == 303 and r.headers["location"] == "/extensions?done=approve_extension"
    assert "已批准延期" in flash(sup.get(r.headers["location"]), "ok")
    with web.app.engine.connect() as conn:
        due = conn.execute(select(tickets.c.due_at).where(tickets.c.ref == ref)).scalar_one()
    assert due == datetime.fromisoformat(html.unescape(until.group(1)))


def test_the_board_shows_overdue_and_escalated_tickets(web: Web) -> None:
    ref, _ = report(Browser(web), category="random_parking", title="乱停车")
    sup = browser(web, SUPERVISOR)
    assert "没有超期或督办中的问题" in sup.get("/board").text
    web.clock.advance(timedelta(hours=3))
    board = sup.get("/board").text
    assert ref in board and "超时 1小时" in board and "未升级" in board
    escalation.sweep(web.app, web.clock())
    board = sup.get("/board").text
    # The sweep gave it the next rung's deadline: it is still on the board, as escalated.
    assert ref in board and "超时 1小时" in board and "升级 1 级" in board
    assert "堰头村督办（小网格）" in board
    assert ref not in sup.get("/board?level=0").text
    assert ref in sup.get("/board?level=1").text
    assert ref not in sup.get("/board?grid=JS-A1-V02").text
    assert ref in sup.get(f"/board?grid={VILLAGE}").text
    nope = sup.get("/board?grid=NOPE")
    assert nope.status_code == 422 and "没有这个网格" in flash(nope)
    # Leaders see their own part of it.
    assert ref in browser(web, LEADER).get("/board").text
    assert ref not in browser(web, OTHER_LEADER).get("/board").text
    ticket = sup.get(f"/tickets/{ref}").text
    assert "督办记录" in ticket and "堰头村" in ticket


def test_deferral_register_and_resume(web: Web) -> None:
    ref, _ = report(Browser(web))
    sup = browser(web, SUPERVISOR)
    page = sup.get(f"/tickets/{ref}").text
    review = re.search(r'<select name="review_on" required>\s*<option value="([^"]+)"', page)
    assert review
    r = step(sup, ref, "defer", {"reason": "等待拆迁", "review_on": review.group(1)})
    assert r.status_code == 303 and state_of(web.app, ref) == "deferred"
    listing = sup.get("/deferred").text
    assert ref in listing and "等待拆迁" in listing and "恢复后剩余" in listing
    token = sup.csrf("/deferred")
    r = sup.post(f"/tickets/{ref}/steps/resume?back=/deferred", {}, token=token)
    assert r.status_code == 303 and state_of(web.app, ref) == "assigned"
    assert "挂账登记册是空的" in sup.get(r.headers["location"]).text


def test_reports_page_embeds_the_weekly_report_and_offers_downloads(web: Web) -> None:
    sup = browser(web, SUPERVISOR)
    page = sup.get("/reports")
    assert page.status_code == 200
    assert 'src="/reports/weekly/2026-W13.html"' in page.text
    frame = sup.get("/reports/weekly/2026-W13.html")
    assert frame.status_code == 200 and frame.headers["x-frame-options"] == "SAMEORIGIN"
    xlsx = sup.get("/reports/weekly/2026-W13.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert "attachment" in xlsx.headers["content-disposition"]
    r = sup.get("/reports/weekly/2026-W14.html")
    assert r.status_code == 422 and "这一周还没有结束" in flash(r)
    assert sup.get("/reports/board/2026-03.html").status_code == 404
    assert browser(web, LEADER).get("/reports/weekly/2026-W13.html").status_code == 403


# --- administrators ----------------------------------------------------------------------------


def test_admin_pages_need_an_administrator(web: Web) -> None:
    sup = browser(web, SUPERVISOR)
    for url in ("/admin", f"/admin/people/{LEADER}", f"/admin/grids/{MICRO}", "/admin/import"):
        r = sup.get(url)
        assert r.status_code == 403 and "只有管理员" in flash(r), url
    assert Browser(web).get("/admin").status_code == 303


def test_admin_resets_a_password(web: Web) -> None:
    adm = browser(web, ADMIN)
    assert LEADER in adm.get("/admin?q=yantou").text
    url = f"/admin/people/{LEADER}"
    token = adm.csrf(url)
    r = adm.post(f"{url}/password", {"password": "new-pass-999", "again": "other-999"}, token=token)
    assert r.status_code == 422 and "两次输入的密码不一致" in flash(r)
    r = adm.post(f"{url}/password", {"password": "short", "again": "short"}, token=token)
    assert r.status_code == 422 and "至少需要 8 位" in flash(r)
    r = adm.post(
        f"{url}/password", {"password": "new-pass-999", "again": "new-pass-999"}, token=token
    )
    assert r.status_code == 303 and "已重置" in flash(adm.get(r.headers["location"]), "ok")
    Browser(web).login(LEADER, "new-pass-999")
    r = adm.post(f"{url}/password", {"password": "x" * 9, "again": "x" * 9}, token=None)
    assert r.status_code == 403


def test_admin_disables_a_person_from_their_page(web: Web) -> None:
    """Issue 10, item 7: the button on /admin/people/H. It asks for a confirmation, needs the
    CSRF token, ends the person's sessions, revokes their tokens and writes the audit line."""
    victim = browser(web, LEADER)
    token = auth.create_token(web.app, LEADER, "hotline", web.clock()).token
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.client.get("/api/me", headers=bearer).status_code == 200
    adm = browser(web, ADMIN)
    url = f"/admin/people/{LEADER}"
    page = adm.get(url).text
    assert 'action="/admin/people/yantou.g3/disable"' in page and "停用账号" in page
    assert 'name="confirm" value="1" required' in page
    assert "Disable the account" in Browser(web).login(ADMIN).get(f"{url}?lang=en").text
    # One's own page has no such button, and the route refuses it too.
    assert "/disable" not in adm.get(f"/admin/people/{ADMIN}").text
    r = adm.post(f"/admin/people/{ADMIN}/disable", {"confirm": "1"}, token=adm.csrf(url))
    assert r.status_code == 403 and "不能停用自己的账号" in flash(r)

    csrf = adm.csrf(url)
    r = adm.post(f"{url}/disable", {"confirm": "1"}, token=None)
    assert r.status_code == 403
    r = adm.post(f"{url}/disable", {}, token=csrf)
    assert r.status_code == 422 and "请先勾选确认" in flash(r)
    assert victim.get("/inbox").status_code == 200  # nothing happened yet
    assert adm.post("/admin/people/nobody.here/disable", {}, token=csrf).status_code == 404

    r = adm.post(f"{url}/disable", {"confirm": "1"}, token=csrf)
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=disable"
    shown = adm.get(r.headers["location"])
    assert "账号已停用" in flash(shown, "ok") and "已停用（" in shown.text
    assert 'action="/admin/people/yantou.g3/enable"' in shown.text
    assert victim.get("/inbox").status_code == 303  # their session ended: back to login
    assert web.client.get("/api/me", headers=bearer).status_code == 401
    r = Browser(web).post("/login", {"handle": LEADER, "password": PASSWORD, "next": "/"})
    assert r.status_code != 303
    line = audit.lines(web.app.engine, LEADER)[-1]
    assert (line["actor"], line["action"]) == (ADMIN, "person.disable")
    assert "1 token(s) revoked" in line["detail"] and "0 session(s)" not in line["detail"]
    listed = adm.get("/admin?q=yantou.g3").text
    assert '<span class="flag up">已停用</span>' in listed

    # Enabled again: a login works, the old token stays revoked.
    r = adm.post(f"{url}/enable", {}, token=csrf)
    assert r.status_code == 303 and "账号已恢复" in flash(adm.get(r.headers["location"]), "ok")
    Browser(web).login(LEADER)
    assert web.client.get("/api/me", headers=bearer).status_code == 401
    assert audit.lines(web.app.engine, LEADER)[-1]["action"] == "person.enable"


def test_admin_sets_channels(web: Web) -> None:
    adm = browser(web, ADMIN)
    url = f"/admin/people/{LEADER}"
    token = adm.csrf(url)
    r = adm.post(f"{url}/channels", {"channel": ["webhook"], "webhook": ""}, token=token)
    assert r.status_code == 422 and "Webhook" in flash(r)
    r = adm.post(
        f"{url}/channels",
        {"channel": ["email", "webhook"], "webhook": "https://oapi.dingtalk.com/x", "digest": "1"},
        token=token,
    )
    assert r.status_code == 303
    with web.app.engine.connect() as conn:
        row = conn.execute(select(people).where(people.c.handle == LEADER)).one()
    assert (row.channels, row.webhook, row.digest) == (
        "email,webhook",
        "https://oapi.dingtalk.com/x",
        True,
    )
    assert "通知方式已保存" in flash(adm.get(r.headers["location"]), "ok")


def test_admin_changes_a_grids_leader(web: Web) -> None:
    adm = browser(web, ADMIN)
    url = f"/admin/grids/{MICRO}"
    assert "王霞" in adm.get(url).text
    token = adm.csrf(url)
    r = adm.post(f"{url}/leader", {"handle": "nobody.here"}, token=token)
    assert r.status_code == 422 and "没有这个账号" in flash(r)
    r = adm.post(f"{url}/leader", {"handle": "yantou.g1"}, token=token)
    assert r.status_code == 303
    with web.app.engine.connect() as conn:
        leader = conn.execute(
            select(people.c.handle)
            .join(grids, grids.c.leader_id == people.c.id)
            .where(grids.c.code == MICRO)
        ).scalar_one()
    assert leader == "yantou.g1"
    assert adm.get("/admin/grids/NOPE").status_code == 404


def test_admin_imports_a_grid_file_or_sees_every_problem(web: Web) -> None:
    adm = browser(web, ADMIN)
    token = adm.csrf("/admin/import")
    header = "code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email\n"
    bad = header + "JS-A1-V01-G99,新户组,4,NOPE,x.y,某人,138,x@example.org\nBAD CODE,,9,,,,,\n"
    r = adm.post("/admin/import", {"text": bad}, token=token)
    assert r.status_code == 422 and "文件未导入：发现" in r.text
    problems = re.findall(r"<li>(.*?)</li>", r.text.split('id="problems"')[1].split("</ol>")[0])
    # Said in the page's language with their lines, not English sentences in a Chinese frame.
    problems = [html.unescape(p) for p in problems]
    assert len(problems) >= 2 and all(re.match(r"第 \d+ 行：", p) for p in problems), problems
    assert problems[:2] == [
        "第 2 行：网格 JS-A1-V01-G99 的负责人电话 138 有误。",
        "第 2 行：网格 JS-A1-V01-G99 的上级 NOPE 不存在（本文件和已有网格中都没有）。",
    ]
    assert "第 3 行：网格代码 BAD CODE 只能用英文字母、数字和“.”“_”“-”" in problems[2]
    assert not any(re.search(r"[A-Za-z]{3,} [a-z]{3,} [a-z]{3,}", p) for p in problems), problems
    good = (
        header
        + "JS-A1-V01-G09,堰头村第9户组,4,JS-A1-V01,yantou.g9,新人,13800001234,g9@example.org\n"
    )
    r = adm.post(
        "/admin/import",
        files=[("file", ("grids.csv", good.encode("utf-8-sig"), "text/csv"))],
        token=token,
    )
    assert r.status_code == 200 and "新建网格 1 个" in r.text
    with web.app.engine.connect() as conn:
        assert conn.execute(
            select(grids.c.name).where(grids.c.code == "JS-A1-V01-G09")
        ).scalar_one()
    # The English page (a cookie from here on) says them as the command line does.
    r = adm.post("/admin/import?lang=en", {"text": bad}, token=token)
    english = re.findall(r"<li>(.*?)</li>", r.text.split('id="problems"')[1].split("</ol>")[0])
    assert [html.unescape(p) for p in english] == [
        "line 2: bad leader_phone '138' for grid 'JS-A1-V01-G99'",
        "line 2: unknown parent 'NOPE' for grid 'JS-A1-V01-G99' (neither in this file nor stored)",
        "line 3: code 'BAD CODE' may use only ASCII letters, digits, '.', '_' and '-' "
        "(at most 64, starting with a letter or digit)",
    ]
    assert len(english) == len(problems)


def test_admin_import_reads_excels_gbk_and_names_a_file_it_cannot_read_in_both_languages(
    web: Web,
) -> None:
    adm = browser(web, ADMIN)
    token = adm.csrf("/admin/import")
    header = "code,name,level,parent_code,leader_handle,leader_name,leader_phone,leader_email\n"
    good = header + "JS-A1-V01-G08,堰头村第8户组,4,JS-A1-V01,yantou.g8,新人,,\n"
    r = adm.post(
        "/admin/import",
        files=[("file", ("grids.csv", good.encode("gbk"), "text/csv"))],
        token=token,
    )
    assert r.status_code == 200 and "新建网格 1 个" in r.text
    with web.app.engine.connect() as conn:
        name = conn.execute(select(grids.c.name).where(grids.c.code == "JS-A1-V01-G08")).scalar()
    assert name == "堰头村第8户组"
    utf16 = [("file", ("grids.csv", good.encode("utf-16"), "text/csv"))]
    for url, head, said in (
        (
            "/admin/import",
            "文件未导入：发现 1 个问题",
            "文件：这是 UTF-16 文本（Excel 的“Unicode 文本”）",
        ),
        (
            "/admin/import?lang=en",
            "Not imported: 1 problem(s)",
            'file: UTF-16 text (Excel\'s "Unicode text"), not a CSV text',
        ),
    ):
        r = adm.post(url, files=utf16, token=token)
        assert r.status_code == 422 and head in r.text
        problems = re.findall(r"<li>(.*?)</li>", r.text.split('id="problems"')[1])
        assert html.unescape(problems[0]).startswith(said)


def test_reports_page_shows_the_months_red_and_yellow_boards(web: Web) -> None:
    from closeloop.exam import service as store
    from tests.report_data import REAL_NOW

    store.import_exam(web.app, APRIL, REAL_NOW)
    store.publish_board(web.app, "2026-04", REAL_NOW + timedelta(days=20))
    web.clock.set(REAL_NOW + timedelta(days=20))
    sup = browser(web, SUPERVISOR)
    page = sup.get("/reports").text
    red = page.split('id="red-board"')[1].split("</ol>")[0]
    yellow = page.split('id="yellow-board"')[1].split("</ol>")[0]
    assert red.count("<li>") >= 1 and yellow.count("<li>") >= 1
    assert 'src="/reports/board/2026-04.html"' in page
    xlsx = sup.get("/reports/board/2026-04.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert sup.get("/reports/board/2026-04.html").headers["x-frame-options"] == "SAMEORIGIN"


def test_the_reporter_learns_when_a_report_is_dismissed(web: Web) -> None:
    reporter = Browser(web)
    ref, secret = report(reporter)
    sup = browser(web, SUPERVISOR)
    assert step(sup, ref, "dismiss", {"reason": "重复上报"}).status_code == 303
    page = reporter.get(f"/track/{ref}?secret={secret}").text
    assert "已作废" in page and "感谢您的监督" not in page
