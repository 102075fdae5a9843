"""`closeloop demo` walks the loop, then one campaign, one patrol and one meeting."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from closeloop import demo
from closeloop.app import App
from closeloop.campaigns import service as campaigns
from closeloop.meetings import service as meetings
from closeloop.patrols import service as patrols

NOW = datetime(2026, 4, 8, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_the_demo_walks_a_campaign_a_patrol_and_a_meeting(app: App) -> None:
    lines: list[str] = []
    pile, *_ = demo.run(app, NOW, echo=lines.append)
    text = "\n".join(lines)
    for heading in ("== 一月一村大会战", "== 巡查", "== 定期例会"):
        assert heading in text, text
    shown = campaigns.show_campaign(app, 1, NOW)
    assert shown["date"] == "2026-04-08" and len(shown["tagged"]) == 2
    assert patrols.show_patrol(app, 1)["found"][0]["ref"] == pile
    m = meetings.show_meeting(app, 1)
    assert m["week"] == "2026-W14" and [d["grid"] for d in m["decisions"]] == ["JS-A1-V02"]
    assert "2026-04: 1 of 117 small grids visited (堰头村)" in text
