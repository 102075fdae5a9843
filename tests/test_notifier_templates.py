"""Every notice template, in every locale, rendered with realistic data.

``sample_context`` builds what the engine will pass, key for key (checked against the
TypedDicts in notifiers/context.py), so a template that needs a key the engine does not
provide fails here.
"""

from __future__ import annotations

import copy
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifiers.context import (
    CONTEXT_TYPES,
    EscalationView,
    HistoryEntry,
    Recipient,
    ReminderView,
    ReportView,
    TicketView,
)
from notifiers.message import KINDS
from notifiers.render import Renderer, RenderError, format_duration

NOW = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai
LOCALES = ("zh_CN", "en")
BASE_URL = "https://closeloop.example.gov.cn/tickets/"

NAMES: dict[str, dict[str, Any]] = {
    "zh_CN": {
        "category": "乱堆乱放",
        "action": "大清理",
        "state": "待整改",
        "stage": "整改",
        "level": "中网格",
        "steps": ("上报", "交办", "整改完成", "退回返工"),
        "summary": ["本周新增问题 42 件，销号 37 件，按期办结率 88%", "超期 5 件，均已上提督办"],
    },
    "en": {
        "category": "Random piling",
        "action": "clean-up",
        "state": "Assigned",
        "stage": "fix",
        "level": "medium grid",
        "steps": ("submit", "assign", "fix", "reject"),
        "summary": ["42 new problems, 37 closed, 88% on time", "5 overdue, all escalated"],
    },
}

# What each kind's deadline is, relative to NOW, and the wording the notice must carry.
DUE = {
    "assignment": timedelta(hours=24),
    "reminder": timedelta(hours=3, minutes=20),
    "supervision": -timedelta(days=2, hours=3),
    "verification_request": timedelta(hours=20),
    "rejection": timedelta(days=1, hours=2),
    "closure": None,
}


def make_ticket(
    locale: str,
    *,
    ref: str = "EP-20260401-0007",
    title: str = "堰头村村口废旧建材乱堆",
    due: timedelta | None = timedelta(hours=24),
    url: str | None = BASE_URL,
    escalation_level: int = 0,
    rework_count: int = 0,
) -> TicketView:
    names = NAMES[locale]
    submit, assign, fix, reject = names["steps"]
    history: list[HistoryEntry] = [
        {
            "at": NOW - timedelta(days=1, hours=2),
            "step_name": submit,
            "by_name": "李秀英",
            "note": "村口东侧堆了很多砖头木料",
        },
        {
            "at": NOW - timedelta(days=1, hours=1),
            "step_name": assign,
            "by_name": "系统",
            "note": None,
        },
        {
            "at": NOW - timedelta(hours=5),
            "step_name": fix,
            "by_name": "王建国",
            "note": "已清运，拍照上传",
        },
        {
            "at": NOW - timedelta(hours=2),
            "step_name": reject,
            "by_name": "陈志强",
            "note": "路肩仍有碎砖",
        },
    ]
    return {
        "ref": ref,
        "category": "random_piling",
        "category_name": names["category"],
        "action_name": names["action"],
        "title": title,
        "description": "村口公路边堆放废旧砖块、木料约 5 立方米，占用半幅道路。",
        "address": "堰头村村口东侧公路边",
        "grid_code": "KFQ-A1-YT-03",
        "grid_name": "堰头村第3户组",
        "grid_path": "开发区 / 第一工作片区 / 堰头村 / 堰头村第3户组",
        "responsible_grid_name": "堰头村第3户组",
        "assignee_name": "王建国",
        "assignee_phone": "13800000001",
        "state": "assigned",
        "state_name": names["state"],
        "stage": "fix",
        "stage_name": names["stage"],
        "due_at": None if due is None else NOW + due,
        "escalation_level": escalation_level,
        "rework_count": rework_count,
        "url": None if url is None else url + ref,
        "history": history,
    }


def sample_context(kind: str, now: datetime = NOW, locale: str = "zh_CN") -> dict[str, Any]:
    """The context the engine passes for ``kind``, with every key filled."""
    recipient: Recipient = {"name": "王建国", "handle": "wangjg"}
    ctx: dict[str, Any] = {"now": now, "locale": locale, "recipient": recipient}
    if kind == "digest":
        ctx["recipient"] = {"name": "张卫东", "handle": "zhangwd"}
        ctx["items"] = [
            make_ticket(
                locale, ref="EP-20260330-0002", due=-timedelta(hours=26), escalation_level=1
            ),
            make_ticket(locale, ref="EP-20260401-0007", due=timedelta(hours=4, minutes=15)),
            make_ticket(locale, ref="EP-20260402-0011", due=timedelta(days=3), url=None),
        ]
        ctx["period_start"] = datetime(2026, 4, 1, 16, 0, tzinfo=UTC)  # 04-02 00:00 local
        ctx["period_end"] = datetime(2026, 4, 2, 16, 0, tzinfo=UTC)
        return ctx
    if kind == "weekly_report":
        ctx["recipient"] = {"name": "张卫东", "handle": "zhangwd"}
        report: ReportView = {
            "week": "2026-W14",
            "url": "https://closeloop.example.gov.cn/reports/2026-W14",
            "summary": list(NAMES[locale]["summary"]),
        }
        ctx["report"] = report
        return ctx
    if kind == "accountability":
        ctx["recipient"] = {"name": "陈志强", "handle": "duban.chen"}
        ctx["case"] = {
            "event": "opened",
            "role": "owner",
            "grid_code": "KFQ-A1-DH",
            "grid_name": "东河村",
            "month": "2026-03",
            "basis_name": "月考" if locale == "zh_CN" else "monthly exam",
            "score": "52.50",
            "floor": "60",
            "due_on": "2026-05-02",
            "owner_name": "陈志强",
            "outcome": None,
            "url": "https://closeloop.example.gov.cn/accountability#case-7",
        }
        return ctx
    if kind == "meeting_minutes":
        ctx["recipient"] = {"name": "张卫东", "handle": "zhangwd"}
        ctx["minutes"] = {
            "title": "会议纪要 · 示范例会 · 2026-04-07",
            "at": "2026-04-07T09:00:00+08:00",
            "place": "荆山夏村",
            "summary": ["EP-2026-000012 清理堰头村东侧垃圾堆 (JS-A1-V01; 期限 2026-04-10)"],
        }
        return ctx
    ctx["ticket"] = make_ticket(
        locale,
        due=DUE[kind],
        escalation_level=2 if kind == "supervision" else 0,
        rework_count=1 if kind == "rejection" else 0,
    )
    if kind == "reminder":
        reminder: ReminderView = {
            "deadline": NOW + timedelta(hours=3, minutes=20),
            "remaining": timedelta(hours=3, minutes=20),
            "fraction": 0.5,
            "late_by": timedelta(0),
            "review": False,
        }
        ctx["reminder"] = reminder
    elif kind == "supervision":
        escalation: EscalationView = {
            "level": 2,
            "level_name": NAMES[locale]["level"],
            "round": 2,
            "stage_name": NAMES[locale]["stage"],
            "deadline": NOW - timedelta(days=2, hours=3),
            "late_by": timedelta(days=2, hours=3),
            "failed_grid_name": "堰头村",
            "failed_leader_name": "周海峰",
            "failed_leader_phone": "13900000002",
            "supervising_grid_name": "第一工作片区",
            "contact_name": "陈志强",
            "contact_phone": "0579-85550000",
        }
        ctx["escalation"] = escalation
    elif kind == "rejection":
        ctx["reason"] = "路肩仍有碎砖未清，围挡未恢复"
    elif kind == "closure":
        ctx["recipient"] = {"name": "李秀英", "handle": "reporter-1024"}
    return ctx


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_sample_context_covers_every_key_of_the_typed_dicts() -> None:
    def keys(td: type) -> set[str]:
        return set(typing.get_type_hints(td))

    def required(td: type) -> set[str]:
        hints = typing.get_type_hints(td, include_extras=True)
        return {k for k, v in hints.items() if typing.get_origin(v) is not typing.NotRequired}

    for kind in KINDS:
        ctx = sample_context(kind)
        td = CONTEXT_TYPES[kind]
        assert required(td) <= set(ctx) <= keys(td), kind
        assert set(ctx["recipient"]) == keys(Recipient)
        for ticket in [ctx["ticket"]] if "ticket" in ctx else ctx.get("items", []):
            assert set(ticket) == keys(TicketView)
            assert all(set(h) == keys(HistoryEntry) for h in ticket["history"])
    assert set(sample_context("supervision")["escalation"]) == keys(EscalationView)
    assert set(sample_context("reminder")["reminder"]) == keys(ReminderView)
    assert set(sample_context("weekly_report")["report"]) == keys(ReportView)


def test_renderer_lists_every_kind_and_both_locales(renderer: Renderer) -> None:
    assert renderer.kinds == KINDS
    assert set(LOCALES) <= set(renderer.locales)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_all_four_parts(renderer: Renderer, kind: str, locale: str) -> None:
    out = renderer.render(kind, locale, sample_context(kind, locale=locale))
    for part in (out.subject, out.text, out.html, out.markdown):
        assert part.strip()
        assert "None" not in part  # an optional value leaked instead of being left out
    assert "\n" not in out.subject
    assert out.html.startswith("<!DOCTYPE html>")
    assert out.html.rstrip().endswith("</html>")

    bodies = (out.text, out.html, out.markdown)
    if kind == "accountability":
        assert "东河村" in out.subject and "2026-03" in out.subject
        for body in bodies:
            for fact in ("东河村", "KFQ-A1-DH", "2026-03", "52.50", "60", "2026-05-02", "陈志强"):
                assert fact in body, (fact, locale)
            assert ("月考" if locale == "zh_CN" else "monthly exam") in body
            assert "https://closeloop.example.gov.cn/accountability#case-7" in body
        return
    if kind == "meeting_minutes":
        assert "2026-04-07" in out.subject
        for body in bodies:
            assert "EP-2026-000012" in body and "荆山夏村" in body
        return
    if kind == "weekly_report":
        assert "2026-W14" in out.subject
        for body in bodies:
            assert "2026-W14" in body
            assert NAMES[locale]["summary"][0] in body
        assert "https://closeloop.example.gov.cn/reports/2026-W14" in out.text
        return
    if kind == "digest":
        assert "2026-04-02" in out.subject  # the local date of the period
        for body in bodies:
            for ref in ("EP-20260330-0002", "EP-20260401-0007", "EP-20260402-0011"):
                assert ref in body
            assert BASE_URL + "EP-20260330-0002" in body
            assert BASE_URL + "EP-20260402-0011" not in body  # that one has no url
            # overdue by 26 h; due at 21:45 local with 4 h 15 min left
            assert ("已超期1天2小时" if locale == "zh_CN" else "1 d 2 h overdue") in body
            assert "2026-04-02 21:45" in body
        return

    assert "EP-20260401-0007" in out.subject
    for body in bodies:
        assert "EP-20260401-0007" in body
        assert "开发区 / 第一工作片区 / 堰头村 / 堰头村第3户组" in body
        assert "王建国" in body or kind == "closure"
        assert NAMES[locale]["category"] in body
    due = DUE[kind]
    if due is not None:
        deadline_local = (NOW + due).astimezone(renderer.tz).strftime("%Y-%m-%d %H:%M")
        for body in bodies:
            assert deadline_local in body, (kind, locale)
        wording = {
            ("zh_CN", True): f"剩余{format_duration(due, 'zh_CN')}",
            ("zh_CN", False): f"已超期{format_duration(due, 'zh_CN')}",
            ("en", True): f"{format_duration(due, 'en')} left",
            ("en", False): f"{format_duration(due, 'en')} overdue",
        }[(locale, due > timedelta(0))]
        for body in bodies:
            assert wording in body, (kind, locale, wording)
    # The history in brief: steps with who did them, in local time.
    for body in (out.text, out.html):
        assert "04-01 15:30" in body  # the report, 26 h before NOW, shown in Shanghai time
        assert "李秀英" in body
    for body in bodies:
        assert BASE_URL + "EP-20260401-0007" in body


@pytest.mark.parametrize("locale", LOCALES)
def test_an_accountability_notice_to_a_leader_and_on_closing(
    renderer: Renderer, locale: str
) -> None:
    ctx = sample_context("accountability", locale=locale)
    leader = {**ctx, "case": {**ctx["case"], "role": "leader"}}
    out = renderer.render("accountability", locale, leader)
    for body in (out.text, out.html, out.markdown):
        assert "52.50" in body and "accountability#case-7" in body
    assert ("您负责的东河村" if locale == "zh_CN" else "the grid you lead") in out.text
    unlinked = renderer.render(
        "accountability", locale, {**leader, "case": {**leader["case"], "url": None}}
    )
    for body in (unlinked.text, unlinked.html, unlinked.markdown):
        assert "accountability#case-7" not in body and "None" not in body
    closed = {
        **ctx,
        "case": {
            **ctx["case"],
            "event": "closed",
            "basis_name": None,
            "score": None,
            "floor": None,
            "outcome": "约谈村支书，限期整改",
        },
    }
    out = renderer.render("accountability", locale, closed)
    assert ("问责结案" if locale == "zh_CN" else "Accountability closed") in out.subject
    for body in (out.text, out.html, out.markdown):
        assert "约谈村支书，限期整改" in body and "东河村" in body
        assert "52.50" not in body and "None" not in body


@pytest.mark.parametrize("locale", LOCALES)
def test_supervision_says_who_failed_how_late_what_level_and_whom_to_call(
    renderer: Renderer, locale: str
) -> None:
    out = renderer.render("supervision", locale, sample_context("supervision", locale=locale))
    late = format_duration(timedelta(days=2, hours=3), locale)
    assert late in out.subject
    for body in (out.text, out.html, out.markdown):
        for fact in (
            "堰头村",
            "周海峰",
            "第一工作片区",
            "陈志强",
            "0579-85550000",
            NAMES[locale]["level"],
            "2026-03-31 14:30",
            late,
        ):
            assert fact in body, (locale, fact)


@pytest.mark.parametrize("locale", LOCALES)
def test_reminder_says_how_much_time_is_used(renderer: Renderer, locale: str) -> None:
    out = renderer.render("reminder", locale, sample_context("reminder", locale=locale))
    for body in (out.text, out.html, out.markdown):
        assert "50%" in body
    assert ("3小时20分钟" if locale == "zh_CN" else "3 h 20 min") in out.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_a_late_reminder_says_how_late_not_time_left(renderer: Renderer, locale: str) -> None:
    ctx = sample_context("reminder", locale=locale)
    ctx["reminder"] = {
        "deadline": NOW - timedelta(hours=2),
        "remaining": timedelta(0),
        "fraction": 1.0,
        "late_by": timedelta(hours=2),
        "review": False,
    }
    out = renderer.render("reminder", locale, ctx)
    late = "已超期2小时" if locale == "zh_CN" else "2 h late"
    assert late in out.subject
    for body in (out.text, out.html, out.markdown):
        assert ("已超期 2小时" if locale == "zh_CN" else "2 h late") in body
    assert ("剩余" if locale == "zh_CN" else "left") not in out.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_rejection_carries_the_reason(renderer: Renderer, locale: str) -> None:
    out = renderer.render("rejection", locale, sample_context("rejection", locale=locale))
    for body in (out.text, out.html, out.markdown):
        assert "路肩仍有碎砖未清，围挡未恢复" in body


@pytest.mark.parametrize("locale", LOCALES)
def test_html_is_escaped_and_text_is_not(renderer: Renderer, locale: str) -> None:
    ctx = sample_context("assignment", locale=locale)
    ctx["ticket"]["title"] = '<script>alert("x")</script> & 砖'
    ctx["recipient"]["name"] = "<b>王</b>"
    out = renderer.render("assignment", locale, ctx)
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 砖" in out.html
    assert "&lt;b&gt;王&lt;/b&gt;" in out.html
    assert '<script>alert("x")</script> & 砖' in out.text
    assert '<script>alert("x")</script> & 砖' in out.subject
    assert "&lt;" not in out.text and "&lt;" not in out.markdown


@pytest.mark.parametrize("kind", ["assignment", "supervision", "digest"])
def test_no_link_line_without_a_base_url(renderer: Renderer, kind: str) -> None:
    ctx = sample_context(kind)
    for ticket in [ctx["ticket"]] if "ticket" in ctx else ctx["items"]:
        ticket["url"] = None
    out = renderer.render(kind, "zh_CN", ctx)
    for body in (out.text, out.html, out.markdown):
        assert "查看工单" not in body
        assert "http" not in body
        assert "<a " not in body


def test_weekly_report_without_url_points_to_the_attachment(renderer: Renderer) -> None:
    ctx = sample_context("weekly_report")
    ctx["report"]["url"] = None
    out = renderer.render("weekly_report", "zh_CN", ctx)
    assert "附件" in out.text and "附件" in out.html
    assert "http" not in out.text


def test_digest_with_nothing_open(renderer: Renderer) -> None:
    ctx = sample_context("digest")
    ctx["items"] = []
    out = renderer.render("digest", "zh_CN", ctx)
    assert "在办 0 件" in out.subject
    assert "没有在办工单" in out.text


def test_a_missing_key_is_an_error_naming_it(renderer: Renderer) -> None:
    ctx = sample_context("supervision")
    del ctx["escalation"]["contact_name"]
    with pytest.raises(RenderError, match="contact_name"):
        renderer.render("supervision", "zh_CN", ctx)
    ctx = sample_context("assignment")
    del ctx["ticket"]
    with pytest.raises(RenderError, match="ticket"):
        renderer.render("assignment", "en", ctx)


def test_unknown_kind_or_locale_is_a_value_error(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="unknown notice kind 'fanfare'"):
        renderer.render("fanfare", "zh_CN", sample_context("assignment"))
    with pytest.raises(ValueError, match="unknown locale 'fr'"):
        renderer.render("assignment", "fr", sample_context("assignment"))


def test_a_naive_datetime_is_refused(renderer: Renderer) -> None:
    ctx = sample_context("assignment")
    ctx["ticket"]["due_at"] = datetime(2026, 4, 3, 9, 30)
    with pytest.raises(ValueError, match=r"ticket\.due_at is a naive datetime"):
        renderer.render("assignment", "zh_CN", ctx)


def test_override_folder_is_searched_first(tmp_path: Path) -> None:
    (tmp_path / "zh_CN").mkdir()
    (tmp_path / "zh_CN" / "assignment.j2").write_text(
        "{% block subject %}【本区交办】{{ ticket.ref }}{% endblock %}\n"
        "{% block text %}请办理 {{ ticket.ref }}，期限 {{ ticket.due_at|local }}{% endblock %}\n"
        "{% block html %}<p>{{ ticket.title }}</p>{% endblock %}\n"
        "{% block markdown %}**{{ ticket.ref }}**{% endblock %}\n",
        encoding="utf-8",
    )
    # Overriding the shared macros changes every kind that uses them.
    builtin = Path(__file__).parent.parent / "notifiers" / "templates" / "zh_CN" / "_macros.j2"
    macros = builtin.read_text(encoding="utf-8").replace(
        "本通知由 closeloop 系统自动发送", "开发区网格办"
    )
    (tmp_path / "zh_CN" / "_macros.j2").write_text(macros, encoding="utf-8")

    zoned = Renderer(timezone="Asia/Shanghai", override_dir=tmp_path)
    ctx = sample_context("assignment")
    ctx["ticket"]["title"] = "<i>砖</i>"
    out = zoned.render("assignment", "zh_CN", ctx)
    assert out.subject == "【本区交办】EP-20260401-0007"
    assert out.text == "请办理 EP-20260401-0007，期限 2026-04-03 17:30"
    assert out.html == "<p>&lt;i&gt;砖&lt;/i&gt;</p>"  # an override is autoescaped too
    assert out.markdown == "**EP-20260401-0007**"

    closure = zoned.render("closure", "zh_CN", sample_context("closure"))
    assert "开发区网格办" in closure.text
    assert "closeloop 系统自动发送" not in closure.text
    # Other locales keep the built-in templates.
    en = zoned.render("assignment", "en", sample_context("assignment", locale="en"))
    assert en.subject.startswith("[Assignment]")


def test_override_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Renderer(override_dir=tmp_path / "missing")


def test_override_without_a_block_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "closure.j2").write_text(
        "{% block subject %}Closed {{ ticket.ref }}{% endblock %}", encoding="utf-8"
    )
    with pytest.raises(RenderError, match="no block 'text'"):
        Renderer(override_dir=tmp_path).render("closure", "en", sample_context("closure"))


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Renderer(timezone="Mars/Olympus_Mons")


def test_local_shows_the_zone_time() -> None:
    assert Renderer().local(NOW) == "2026-04-02 17:30"
    assert Renderer(timezone="UTC").local(NOW) == "2026-04-02 09:30"
    assert Renderer().local(NOW, "%m-%d") == "04-02"


@pytest.mark.parametrize(
    ("delta", "zh", "en"),
    [
        (timedelta(hours=3, minutes=20), "3小时20分钟", "3 h 20 min"),
        (timedelta(hours=3, minutes=20, seconds=59), "3小时20分钟", "3 h 20 min"),
        (timedelta(days=2, hours=3, minutes=5), "2天3小时", "2 d 3 h"),
        (timedelta(days=1), "1天", "1 d"),
        (timedelta(hours=5), "5小时", "5 h"),
        (timedelta(minutes=7), "7分钟", "7 min"),
        (timedelta(seconds=30), "不到1分钟", "less than 1 min"),
        (-timedelta(hours=1, minutes=1), "1小时1分钟", "1 h 1 min"),
    ],
)
def test_duration_is_locale_aware(delta: timedelta, zh: str, en: str) -> None:
    assert format_duration(delta, "zh_CN") == zh
    assert format_duration(delta, "en") == en


def test_rendering_does_not_change_the_context(renderer: Renderer) -> None:
    ctx = sample_context("digest")
    before = copy.deepcopy(ctx)
    renderer.render("digest", "zh_CN", ctx)
    assert ctx == before
