"""What the pages say, in Chinese (the default) and English.

One catalogue of (zh_CN, en) pairs, so the two languages cannot drift apart; durations and
times in the reader's language. The domain's errors are said by their codes from
`closeloop.errors`; what is here only frames the framework's own (an unknown path, a crash). The
names of states, steps and categories come from the workflow file, not from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from closeloop.web.i18n_fieldwork import PAIRS as _FIELDWORK_PAIRS

DEFAULT = "zh_CN"
LOCALES = ("zh_CN", "en")

_PAIRS: dict[str, tuple[str, str]] = {
    # --- frame
    "brand": ("环境问题闭环", "Closeloop"),
    "a11y.skip": ("跳到正文", "Skip to content"),
    "nav.menu": ("导航", "Navigation"),
    "nav.report": ("上报问题", "Report a problem"),
    "nav.track": ("查询进度", "Follow a report"),
    "nav.login": ("工作人员登录", "Staff login"),
    "nav.logout": ("退出", "Log out"),
    "nav.inbox": ("我的待办", "My inbox"),
    "nav.tickets": ("问题列表", "Tickets"),
    "nav.board": ("超期督办", "Overdue board"),
    "nav.extensions": ("延期审批", "Extensions"),
    "nav.deferred": ("缓办挂账", "Deferred"),
    "nav.reports": ("周报月榜", "Reports"),
    "nav.map": ("网格地图", "Map"),
    "nav.admin": ("管理", "Admin"),
    "nav.language": ("语言", "Language"),
    "nav.signed_in": ("当前用户：{name}", "Signed in: {name}"),
    "footer.text": (
        "即交即办 · 强化督查 · 定期例会 · 奖优罚劣",
        "Handle on submission · supervise · meet regularly · reward the good",
    ),
    # --- home
    "home.title": ("环境问题随手拍", "Report an environmental problem"),
    "home.lead": (
        "看到乱堆乱放、乱搭乱建、卫生死角？拍照上报，所在网格立即处理，办理进度随时可查。",
        "Rubbish piled up, illegal building, a dirty corner? Send a photo: the grid it belongs "
        "to handles it at once, and you can follow every step.",
    ),
    "home.report": ("我要上报问题", "Report a problem"),
    "home.track": ("查询办理进度", "Follow my report"),
    "home.staff": ("网格长、督查人员、管理员请登录", "Grid leaders, supervisors, administrators"),
    "home.how": ("怎么处理", "What happens"),
    "home.how1": ("您上报，系统立即交给所在网格", "You report; it goes to its grid at once"),
    "home.how2": ("网格长限期整改，拍照留证", "The grid leader fixes it in time, with photos"),
    "home.how3": ("上级网格现场核查", "A leader above checks on site"),
    "home.how4": ("核查通过后销号，超期自动逐级督办", "Closed when checked; late ones go up"),
    # --- fields
    "field.required": ("必填", "required"),
    "field.optional": ("可选", "optional"),
    "field.category": ("问题类型", "Kind of problem"),
    "field.place": ("问题地点", "Where"),
    "field.village": ("村 / 社区 / 企业网格", "Village, community or enterprise grid"),
    "field.grid": ("具体网格（户组 / 企业）", "Grid (household group or enterprise)"),
    "field.grid_unsure": ("{name}（不清楚具体户组）", "{name} (not sure which group)"),
    "field.choose": ("— 请选择 —", "— choose —"),
    "field.address": ("详细位置", "Address or description of the place"),
    "field.address_hint": ("如：村口石桥东侧 50 米", "e.g. 50 m east of the stone bridge"),
    "field.coords": ("坐标", "Coordinates"),
    "field.lat": ("纬度", "Latitude"),
    "field.lon": ("经度", "Longitude"),
    "field.title": ("一句话说明问题", "The problem in one line"),
    "field.title_hint": ("如：河边堆了大量建筑垃圾", "e.g. building rubble piled by the river"),
    "field.description": ("详细描述", "Details"),
    "field.photos": ("照片", "Photos"),
    "field.photos_hint": (
        "最多 {n} 张，每张不超过 {mb} MB（JPG、PNG、GIF、WebP 或 PDF）",
        "Up to {n}, at most {mb} MB each (JPG, PNG, GIF, WebP or PDF)",
    ),
    "field.reporter_name": ("您的称呼", "Your name"),
    "field.reporter_phone": ("联系电话", "Phone"),
    "field.reporter_email": ("邮箱（办结时通知您）", "Email (we tell you when it is closed)"),
    "field.ref": ("问题编号", "Reference"),
    "field.secret": ("查询码", "Secret code"),
    "field.handle": ("账号", "Account"),
    "field.password": ("密码", "Password"),
    "field.note": ("说明", "Note"),
    "field.note_fix": ("整改情况说明", "What was done"),
    "field.reason": ("理由", "Reason"),
    "field.to_grid": ("改派到", "Move to grid"),
    "field.until": ("延期至", "Extend until"),
    "field.review_on": ("复查日期", "Review on"),
    "field.evidence": ("现场照片", "Photos"),
    "field.new_password": ("新密码（至少 8 位）", "New password (at least 8 characters)"),
    "field.again": ("再输一次", "Again"),
    "field.webhook": ("Webhook 地址", "Webhook address"),
    "field.digest": ("汇总模式：通知合并成每日一条", "Digest: collect notices into one a day"),
    "field.leader_handle": ("新负责人账号", "Account of the new leader"),
    "field.csv_file": ("CSV 文件", "CSV file"),
    "field.csv_text": ("或直接粘贴 CSV 内容", "or paste the CSV text"),
    "field.geojson_file": ("GeoJSON 文件", "GeoJSON file"),
    "field.search": ("搜索", "Search"),
    # --- reporter
    "report.title": ("上报问题", "Report a problem"),
    "report.intro": (
        "无需注册。带 * 的必须填写，其余可以不填。",
        "No account needed. Fields marked * are required.",
    ),
    "report.what": ("什么问题", "What"),
    "report.photos": ("拍照", "Photos"),
    "report.contact": ("联系方式（可选，仅工作人员可见）", "Contact (optional, staff only)"),
    "report.locate": ("使用我当前的位置", "Use my current location"),
    "report.locating": ("正在定位…", "Locating…"),
    "report.located": ("已填入当前位置", "Location filled in"),
    "report.locate_failed": ("无法定位，可以不填", "Could not locate; you may leave it"),
    "report.submit": ("提交上报", "Send the report"),
    "report.located_grid": (
        "按位置找到网格：{name}。请确认，不对可以在下面重新选择。",
        "Your location is in: {name}. Please check it; choose another below if it is wrong.",
    ),
    "report.outside": (
        "该位置不在本区任何网格内，请在下面选择网格。",
        "That place is outside every grid of the zone; please choose the grid below.",
    ),
    # --- the supervisors' map
    "map.title": ("网格地图", "Grid map"),
    "map.intro": (
        "各网格超时未办结件数或上周按期办结率；圆点为超时工单（颜色表示督办级别），紫圈为复发热点。",
        "Overdue tickets per grid, or last week's on-time closure rate; dots are late tickets "
        "(colour: supervision level), purple rings are recurrence hot spots.",
    ),
    "map.level": ("网格层级", "Grid level"),
    "map.level2": ("中网格（片区）", "Medium grids"),
    "map.level3": ("小网格（村、企业网格）", "Small grids"),
    "map.level4": ("微网格", "Micro grids"),
    "map.metric": ("着色", "Colour by"),
    "map.metric_overdue": ("超时未办结（件）", "Overdue (tickets)"),
    "map.metric_on_time": ("上周按期办结率", "Last week's on-time rate"),
    "map.table": (
        "有超时或上周有到期件的网格",
        "Grids with overdue tickets or tickets due last week",
    ),
    "map.table_empty": (
        "没有超时件，上周也没有到期件。",
        "Nothing overdue, nothing due last week.",
    ),
    "map.grid": ("网格", "Grid"),
    "map.no_geometry": (
        "本区还没有网格边界（closeloop grid import-geometry）。",
        "This zone has no grid boundaries yet (closeloop grid import-geometry).",
    ),
    "track.title": ("查询办理进度", "Follow a report"),
    "track.intro": (
        "填写上报后得到的问题编号和查询码。",
        "Enter the reference and the secret code you were given.",
    ),
    "track.submit": ("查询", "Show"),
    "track.not_found": (
        "没有找到这个问题：请核对编号和查询码。",
        "No such report: check the reference and the code.",
    ),
    "track.missing": ("请同时填写编号和查询码。", "Enter both the reference and the code."),
    "track.received": ("已收到您的反映，谢谢！", "Thank you, your report is in."),
    "track.save": (
        "请保存此链接（收藏或截图），用它随时查看办理进度：",
        "Save this link (bookmark or screenshot) to follow your report:",
    ),
    "track.copy": ("复制链接", "Copy the link"),
    "track.copied": ("已复制", "Copied"),
    "track.keep_secret": (
        "查询码相当于密码，请勿公开。",
        "The code works like a password: keep it to yourself.",
    ),
    "track.status": ("当前状态", "Status"),
    "track.closed_text": (
        "问题已整改并销号，感谢您的监督！",
        "The problem has been fixed and closed. Thank you!",
    ),
    "track.open_text": ("已交由 {grid} 处理。", "Handed to {grid}."),
    "track.dismissed_text": (
        "这个问题经核实已作废（重复上报或情况不属实）。",
        "This report was dismissed (a duplicate, or not as reported).",
    ),
    "track.history": ("办理经过", "What happened"),
    "track.new": ("再报一个问题", "Report another problem"),
    "board.unsolved": ("回访未解决", "Reported not solved"),
    "board.unsolved_hint": (
        "已销号但群众回访表示未解决的问题：请核实后决定是否重新打开。",
        "Closed tickets whose reporter says the problem is not solved: check, then reopen "
        "if need be.",
    ),
    "track.rate_title": ("办理结果回访", "Was it solved?"),
    "track.rate_intro": (
        "问题已销号。请告诉我们问题是否真正解决、您是否满意。",
        "The ticket is closed. Tell us whether the problem is really solved and how satisfied "
        "you are.",
    ),
    "track.solved_q": ("问题解决了吗？", "Is the problem solved?"),
    "track.solved_yes": ("已解决", "Yes, solved"),
    "track.solved_no": ("未解决", "No, not solved"),
    "track.satisfaction": ("满意程度", "How satisfied are you?"),
    "sat.satisfied": ("满意", "Satisfied"),
    "sat.basic": ("基本满意", "Basically satisfied"),
    "sat.dissatisfied": ("不满意", "Dissatisfied"),
    "track.comment": ("意见建议（可不填）", "Comment (optional)"),
    "track.rate_submit": ("提交评价", "Send"),
    "track.rated": ("您的评价", "Your answer"),
    "done.rated": (
        "谢谢您的评价！如问题未解决，督查人员会跟进。",
        "Thank you! If the problem is not solved, a supervisor will follow it up.",
    ),
    # --- login
    "login.title": ("工作人员登录", "Staff login"),
    "login.submit": ("登录", "Log in"),
    "login.hint": (
        "账号和密码由管理员提供；忘记密码请联系管理员重置。",
        "Your administrator gives you the account and resets a forgotten password.",
    ),
    # --- inbox and lists
    "inbox.title": ("我的待办", "My inbox"),
    "inbox.summary": ("共 {n} 件待办", "{n} to do"),
    "inbox.summary_late": ("其中 {late} 件已超时", "{late} of them late"),
    "inbox.todo": ("待整改", "To fix"),
    "inbox.check": ("待我核查 / 销号", "To verify or close"),
    "inbox.empty_todo": ("没有待整改的问题。", "Nothing to fix."),
    "inbox.empty_check": ("没有等待您核查的问题。", "Nothing waits for your check."),
    "tickets.title": ("问题列表", "Tickets"),
    "tickets.all": ("全部", "All"),
    "tickets.empty": ("没有符合条件的问题。", "No tickets."),
    "tickets.more": ("下一页", "Next page"),
    "tickets.prev": ("上一页", "Previous page"),
    # --- a ticket
    "ticket.due": ("期限", "Due"),
    "ticket.no_deadline": ("无期限", "no deadline"),
    "ticket.grid": ("所在网格", "Grid"),
    "ticket.responsible": ("责任网格", "Responsible grid"),
    "ticket.assignee": ("责任人", "Responsible"),
    "ticket.category": ("类型", "Kind"),
    "ticket.address": ("位置", "Place"),
    "ticket.coords": ("坐标", "Coordinates"),
    "ticket.map": ("在地图上查看", "Show on a map"),
    "ticket.description": ("描述", "Description"),
    "ticket.reporter": ("上报人", "Reported by"),
    "ticket.reported_at": ("上报时间", "Reported"),
    "ticket.closed_at": ("办结时间", "Closed"),
    "ticket.todo_now": ("现在要做", "What to do now"),
    "ticket.more_actions": ("其他操作", "Other actions"),
    "ticket.no_actions": ("这个问题现在不需要您处理。", "Nothing for you to do on this now."),
    "ticket.details": ("问题详情", "Details"),
    "ticket.timeline": ("办理经过", "Timeline"),
    "ticket.escalations": ("督办记录", "Supervision"),
    "ticket.escalation_line": (
        "{when} 超期，由 {grid}（{level}）督办",
        "{when} missed; supervised by {grid} ({level})",
    ),
    "ticket.extensions": ("延期申请", "Extension requests"),
    "ticket.rework": ("返工 {n} 次", "reworked {n}×"),
    "ticket.extended": ("延期 {n} 次", "extended {n}×"),
    "ticket.recurrence": ("复发（上次 {ref}）", "recurs ({ref})"),
    "ticket.supervised": ("{grid}督办", "supervised by {grid}"),
    "ticket.supervised_level": ("{grid}督办（{level}）", "supervised by {grid} ({level})"),
    "ticket.next_rung": ("下一次升级：{when}", "next rung: {when}"),
    "event.recorded_at": ("{when} 录入", "recorded {when}"),
    "event.backfill_reason": ("补录原因：{reason}", "back-filled: {reason}"),
    "ticket.deferred": (
        "已挂账，复查日期 {when}：{reason}",
        "Deferred until review on {when}: {reason}",
    ),
    "ticket.closed": ("已办结", "Closed"),
    "ticket.photo": ("照片 {n}", "Photo {n}"),
    "ticket.file": ("附件：{name}", "File: {name}"),
    "ticket.back": ("返回待办", "Back to the inbox"),
    "event.system": ("系统", "system"),
    "event.reporter": ("群众", "a resident"),
    "event.assigned_grid": ("交给 {grid}", "assigned to {grid}"),
    "event.to_grid": ("改派到 {grid}", "moved to {grid}"),
    "event.until": ("延期至 {when}", "until {when}"),
    "event.review_on": ("复查日期 {when}", "review on {when}"),
    # --- step forms
    "help.fix": (
        "整改完成后拍下现场照片，写明做了什么。提交后由上级网格核查。",
        "Once fixed, take photos and say what was done. A leader above will check it.",
    ),
    "help.verify": (
        "到现场核实整改效果，确认到位再点核查通过。",
        "Check the fix on site; confirm only when it holds.",
    ),
    "help.reject": (
        "整改不到位时退回返工，写明原因。",
        "Send it back when the fix is not good enough, with the reason.",
    ),
    "help.close": ("核查通过后销号，问题办结。", "Close the ticket once the fix is verified."),
    "help.reopen": ("问题复发时重新打开。", "Reopen when the problem is back."),
    "help.mark_urgent": (
        "列为紧急件，写明原因；此后开始的环节按紧急时限办理，提醒即时发送。",
        "Make it urgent, with the reason; stages that start from now on take the urgent "
        "limits, and notices go out at once.",
    ),
    "help.dismiss": (
        "重复上报或情况不属实的问题作废，写明原因。",
        "Dismiss a duplicate or unfounded report, with the reason.",
    ),
    "help.reassign": (
        "问题不在本网格时改派给所在网格。",
        "Move it when it belongs to another grid.",
    ),
    "help.request_extension": (
        "确实无法按期完成时申请延期，由督查人员审批。",
        "Ask for more time when the deadline cannot be met; a supervisor decides.",
    ),
    "help.approve_extension": ("同意延期申请。", "Approve the extension."),
    "help.refuse_extension": ("驳回延期申请，写明原因。", "Refuse it, with the reason."),
    "help.defer": (
        "暂时无法解决的问题挂账，到期复查；挂账期间不计时。",
        "Park a problem that cannot be solved now; its clock stops until resumed.",
    ),
    "help.resume": (
        "恢复办理，期限按剩余时间重新计算。",
        "Resume work with the time that was left.",
    ),
    # --- what was done
    "done.fix": ("已提交整改，等待上级核查。", "Fix recorded; a leader above will check it."),
    "done.verify": ("核查通过，可以销号了。", "Verified; it can be closed now."),
    "done.reject": ("已退回返工。", "Sent back for rework."),
    "done.close": ("已销号，问题办结。", "Closed."),
    "done.reopen": ("已重新打开。", "Reopened."),
    "done.dismiss": ("已作废。", "Dismissed."),
    "done.mark_urgent": ("已列为紧急件。", "Marked urgent."),
    "done.reassign": ("已改派。", "Moved to the other grid."),
    "done.request_extension": ("延期申请已提交，等待审批。", "Extension requested."),
    "done.approve_extension": ("已批准延期。", "Extension approved."),
    "done.refuse_extension": ("已驳回延期申请。", "Extension refused."),
    "done.defer": ("已挂账。", "Deferred."),
    "done.resume": ("已恢复办理。", "Resumed."),
    "done.password": (
        "密码已重置；此人原有的登录已失效。",
        "Password set; this person's sessions have ended.",
    ),
    "done.disable": (
        "账号已停用：此人的登录已失效，API 令牌已全部吊销。",
        "Account disabled: this person's sessions have ended and their API tokens are revoked.",
    ),
    "done.enable": (
        "账号已恢复，可以重新登录；原有 API 令牌仍为吊销状态。",
        "Account enabled again; they can log in, their old API tokens stay revoked.",
    ),
    "done.channels": ("通知方式已保存。", "Notification settings saved."),
    "done.leader": ("网格负责人已更换。", "The grid's leader is changed."),
    "done.import": ("网格文件已导入。", "The grid file is imported."),
    "done.geometry": (
        "已保存 {grids} 个网格的边界（其中替换 {replaced} 个）。",
        "Boundaries of {grids} grids stored ({replaced} replaced).",
    ),
    # --- supervisors
    "board.title": ("超期督办", "Overdue and supervised"),
    "board.intro": (
        "超过期限或已逐级升级督办的问题，超时最久的在前。",
        "Tickets past a deadline or escalated up the grid, the latest first.",
    ),
    "board.grid": ("网格", "Grid"),
    "board.level": ("升级级别", "Escalation"),
    "board.all_grids": ("全部网格", "All grids"),
    "board.all_levels": ("全部", "All"),
    "board.level0": ("未升级", "Not escalated"),
    "board.levelN": ("升级 {n} 级", "Up {n} level(s)"),
    "board.filter": ("筛选", "Filter"),
    "board.by_level": ("按升级级别", "By escalation"),
    "board.by_area": ("按片区", "By area"),
    "board.count": ("共 {n} 件", "{n} tickets"),
    "board.empty": ("没有超期或督办中的问题。", "Nothing is overdue or under supervision."),
    "board.missed": ("应于 {when} 完成", "was due {when}"),
    "board.new_due": ("下一次升级：{when}", "next rung: {when}"),
    "board.supervising": ("{grid}督办（{level}）", "supervised by {grid} ({level})"),
    "board.extended": ("已延期", "extended"),
    "ext.title": ("延期审批", "Extension requests"),
    "ext.pending": ("待审批", "Pending"),
    "ext.approved": ("已批准", "Approved"),
    "ext.refused": ("已驳回", "Refused"),
    "ext.lapsed": ("已失效", "Lapsed"),
    "ext.all": ("全部", "All"),
    "ext.asked": ("{name} 于 {when} 申请", "asked by {name}, {when}"),
    "ext.until": ("延期至 {when}", "until {when}"),
    "ext.current_due": ("当前期限 {when}", "now due {when}"),
    "ext.decided": ("{name} 于 {when} 处理", "decided by {name}, {when}"),
    "ext.stale": ("该申请所在阶段已结束", "its stage has ended"),
    "ext.empty": ("没有延期申请。", "No extension requests."),
    "ext.refuse_reason": ("驳回理由", "Why refused"),
    "ext.failed": ("{ref} 未处理：{why}", "{ref} not done: {why}"),
    "def.title": ("缓办挂账", "Deferral register"),
    "def.intro": (
        "暂时无法解决、已挂账的问题；挂账期间不计时，到复查日期应复查。",
        "Parked tickets: their clocks stop; review them on the review date.",
    ),
    "def.review": ("复查日期 {when}", "review on {when}"),
    "def.review_due": ("已到复查日期", "review is due"),
    "def.by": ("{name} 于 {when} 挂账", "parked by {name}, {when}"),
    "def.remaining": ("恢复后剩余 {h} 小时（按该类问题的计时方式）", "{h} h left when resumed"),
    "def.empty": ("挂账登记册是空的。", "Nothing is deferred."),
    "reports.title": ("周报与月榜", "Reports and boards"),
    "reports.weekly": ("周报（例会用）", "Weekly report (for the meeting)"),
    "reports.week": ("周", "Week"),
    "reports.show": ("查看", "Show"),
    "reports.download_html": ("下载网页版", "Download HTML"),
    "reports.download_xlsx": ("下载表格（XLSX）", "Download XLSX"),
    "reports.monthly": ("月考红黄榜", "Monthly exam: red and yellow boards"),
    "reports.month": ("月份", "Month"),
    "reports.red": ("红榜", "Red board"),
    "reports.yellow": ("黄榜", "Yellow board"),
    "reports.rank": ("名次", "Rank"),
    "reports.score": ("得分", "Score"),
    "reports.tier": ("档次", "Tier"),
    "reports.no_board": ("{month} 还没有月考结果。", "No exam results for {month} yet."),
    # --- administrators
    "admin.title": ("管理", "Administration"),
    "admin.search_hint": ("账号、姓名、网格编号或名称", "account, name, grid code or name"),
    "admin.people": ("人员", "People"),
    "admin.grids": ("网格", "Grids"),
    "admin.import": ("导入网格文件", "Import a grid file"),
    "admin.geometry": ("导入网格边界", "Import grid boundaries"),
    "admin.geometry_intro": (
        "上传 GeoJSON 文件（FeatureCollection，每个要素的 properties.code 是网格代码，"
        "坐标为 WGS 84 经度、纬度）。文件有任何问题都整体不导入，并列出每个问题；"
        "文件中的网格按新边界替换。",
        "Upload a GeoJSON file (a FeatureCollection; each feature's properties.code names its "
        "grid; WGS 84 longitude, latitude). A file with any problem is refused whole, every "
        "problem listed; the grids it names get their new boundaries.",
    ),
    "admin.geometry_empty": ("请选择 GeoJSON 文件。", "Choose a GeoJSON file."),
    "admin.geometry_not_utf8": ("文件不是 UTF-8 文本。", "The file is not UTF-8 text."),
    "admin.geometry_too_large": (
        "文件太大（不超过 {mb} MB）。",
        "The file is too large ({mb} MB max).",
    ),
    "admin.shown": ("显示 {shown} / {total}，可用搜索缩小范围", "{shown} of {total}; search"),
    "admin.roles": ("角色", "Roles"),
    "admin.role.supervisor": ("督查", "supervisor"),
    "admin.role.admin": ("管理员", "administrator"),
    "admin.leader_role": ("网格长", "grid leader"),
    "admin.can_login": ("可登录", "can log in"),
    "admin.no_password": ("未设密码", "no password"),
    "admin.leads": ("负责网格", "Leads"),
    "admin.contact": ("联系方式", "Contact"),
    "admin.reset": ("重置密码", "Set a password"),
    "admin.reset_btn": ("设置新密码", "Set the password"),
    "admin.password_differ": ("两次输入的密码不一致。", "The two passwords differ."),
    "admin.account": ("账号状态", "Account"),
    "admin.active": ("正常使用", "active"),
    "admin.disabled_since": ("已停用（{at} 起）", "disabled since {at}"),
    "admin.disable_hint": (
        "停用后此人无法登录，现有登录立即失效，其全部 API 令牌被吊销，并记入审计日志。",
        "A disabled person cannot log in: their sessions end at once, all their API tokens "
        "are revoked, and the audit log records it.",
    ),
    "admin.disable_check": ("我确认停用此账号", "I confirm: disable this account"),
    "admin.disable_btn": ("停用账号", "Disable the account"),
    "admin.disable_confirm": (
        "请先勾选确认，再停用账号。",
        "Tick the confirmation first, then disable the account.",
    ),
    "admin.enable_hint": (
        "恢复后此人可以重新登录；已吊销的 API 令牌不会恢复。",
        "Enabled again, they can log in; revoked API tokens stay revoked.",
    ),
    "admin.enable_btn": ("恢复账号", "Enable the account"),
    "admin.disabled": ("已停用", "disabled"),
    "admin.channels": ("通知方式", "Notifications"),
    "admin.channels_hint": (
        "都不选时使用全区默认方式：{default}",
        "None chosen: the zone's default ({default})",
    ),
    "admin.save": ("保存", "Save"),
    "admin.grid_title": ("网格：{name}", "Grid: {name}"),
    "admin.leader": ("负责人", "Leader"),
    "admin.level": ("级别", "Level"),
    "admin.no_leader": ("（无）", "(none)"),
    "admin.change_leader": ("更换负责人", "Change the leader"),
    "admin.leader_hint": (
        "填写已有人员的账号，如 yantou.g1；新人员请先通过网格文件导入。",
        "An existing account, e.g. yantou.g1; add new people through the grid file.",
    ),
    "admin.children": ("下级网格", "Grids below"),
    "admin.above": ("上级", "Above"),
    "admin.import_intro": (
        "上传网格 CSV 文件（Excel 另存为 CSV 即可）。整个文件检查无误才导入；"
        "有问题时列出全部问题和行号，数据库不做任何改动。",
        "Upload the grid CSV (save from Excel as CSV). Nothing is written unless the whole "
        "file is right; otherwise every problem is listed with its line.",
    ),
    "admin.import_btn": ("检查并导入", "Check and import"),
    "admin.csv_refused": (
        "文件未导入：发现 {n} 个问题，请改正后重新上传。",
        "Not imported: {n} problem(s); correct them and upload again.",
    ),
    "admin.csv_empty": ("请选择文件或粘贴内容。", "Choose a file or paste the text."),
    "admin.csv_too_large": ("文件太大（不超过 {mb} MB）。", "The file is too large ({mb} MB max)."),
    "admin.summary": (
        "新建网格 {gc} 个、更新 {gu} 个；新建人员 {pc} 人、更新 {pu} 人。",
        "{gc} grids created, {gu} updated; {pc} people created, {pu} updated.",
    ),
    "channel.console": ("控制台（测试用）", "console (testing)"),
    "channel.file": ("文件", "file"),
    "channel.email": ("邮件", "email"),
    "channel.webhook": ("Webhook（钉钉 / 企业微信 / 飞书）", "webhook (DingTalk, WeCom, Feishu)"),
    # --- errors
    "error.title": ("出错了", "Something went wrong"),
    "error.status": ("错误代码 {status}", "Error {status}"),
    "error.home": ("回到首页", "Home"),
    "err.not_found": ("找不到这个页面。", "There is no such page."),
    "err.forbidden": ("您无权执行此操作。", "You may not do this."),
    "err.method": (
        "这个地址不能直接打开，请回到上一页重新操作。",
        "This address cannot be opened directly; go back and try again.",
    ),
    "err.server": ("服务器出了问题，已记录，请稍后再试。", "A server error; it is logged."),
    "err.too_large": ("提交的内容太大了。", "What was sent is too large."),
    "err.other": ("操作没有完成：{message}", "Not done: {message}"),
    "val.missing": ("请填写“{field}”", "'{field}' is required"),
    "val.too_long": ("“{field}”太长了", "'{field}' is too long"),
    "val.invalid": ("“{field}”有误", "'{field}' is not valid"),
    # --- the monthly exam, accountability, funds (closeloop.web.pages.exam)
    "nav.exam": ("月考打分", "Exam scoring"),
    "nav.accountability": ("问责", "Accountability"),
    "nav.funds": ("资金台账", "Fund ledger"),
    "exam.title": ("{month} 月考打分", "Exam scoring {month}"),
    "exam.mine": ("我负责考核的网格", "Grids I inspect"),
    "exam.all": ("全部被考核网格", "All grids examined"),
    "exam.none": ("本月没有安排您考核的网格。", "No grid is assigned to you this month."),
    "exam.no_plan": ("{month} 还没有考核安排。", "There is no plan for {month} yet."),
    "exam.make_plan": ("生成本月交叉考核安排", "Make this month's cross-inspection plan"),
    "exam.inspector": ("考核网格", "Inspecting grid"),
    "exam.tally": (
        "已完成 {scored} · 打分中 {progress} · 未开始 {missing}",
        "Scored {scored} · in progress {progress} · not started {missing}",
    ),
    "exam.st.scored": ("已提交", "Submitted"),
    "exam.st.submitted": ("已提交", "Submitted"),
    "exam.st.in_progress": ("打分中", "In progress"),
    "exam.st.missing": ("未开始", "Not started"),
    "exam.grid_title": ("{grid} · {month} 月考", "{grid} · exam {month}"),
    "exam.max": ("满分 {n}", "max {n}"),
    "exam.sheet.basic": ("基础卷", "Basic sheet"),
    "exam.sheet.required": ("必答卷", "Required sheet"),
    "exam.sheet.bonus": ("加分卷", "Bonus sheet"),
    "exam.points": ("得分", "Points"),
    "exam.note": ("扣分说明", "Reason for the deduction"),
    "exam.photo": ("现场照片", "Photo"),
    "exam.photo_kept": ("已有照片：{name}", "Photo on file: {name}"),
    "exam.save": ("暂存", "Save"),
    "exam.submit": ("提交（提交后不能修改）", "Submit (final)"),
    "exam.total": ("当前得分 {total}", "Score so far {total}"),
    "exam.submitted_by": ("{who} 已于 {when} 提交", "Submitted by {who}, {when}"),
    "exam.reopen": ("退回重新打分", "Reopen for scoring"),
    "exam.reopen_reason": ("退回原因", "Reason for reopening"),
    "exam.history": ("记录", "History"),
    "exam.ev.saved": ("暂存", "saved"),
    "exam.ev.submitted": ("提交", "submitted"),
    "exam.ev.reopened": ("退回", "reopened"),
    "exam.ev.imported": ("导入", "imported"),
    "exam.publish": ("发布本月红黄榜", "Publish this month's boards"),
    "exam.print_html": ("打印评分表（A4）", "Print score sheets (A4)"),
    "exam.print_xlsx": ("评分表（XLSX）", "Score sheets (XLSX)"),
    "exam.back": ("返回网格列表", "Back to the list"),
    "done.exam_saved": ("已暂存，可以稍后继续。", "Saved; you can continue later."),
    "done.exam_submitted": ("已提交，本网格打分完成。", "Submitted; this grid is scored."),
    "done.exam_reopened": (
        "已退回，考核人可以重新打分。",
        "Reopened; the inspector can score again.",
    ),
    "done.exam_planned": ("已生成本月考核安排。", "This month's plan is made."),
    "done.exam_published": ("红黄榜已发布。", "The boards are published."),
    "acc.title": ("问责", "Accountability"),
    "acc.open": ("未结案", "Open"),
    "acc.closed": ("已结案", "Closed"),
    "acc.none": ("没有问责事项。", "No case."),
    "acc.leaders": ("当时负责人", "Leaders at the time"),
    "acc.owner": ("负责督查", "Owner"),
    "acc.due": ("期限 {date}", "due {date}"),
    "acc.outcome": ("处理结果", "Outcome"),
    "acc.close": ("结案", "Close the case"),
    "acc.leader_note": (
        "以下是涉及您负责网格的问责事项，仅供查看，由督查人员办结。",
        "The cases concerning the grid you lead, to follow; a supervisor closes them.",
    ),
    "done.case_closed": ("问责事项已结案。", "The case is closed."),
    "funds.title": ("{month} 资金台账", "Fund ledger {month}"),
    "funds.download": ("下载台账（XLSX，报财务）", "Download the ledger (XLSX, for finance)"),
    # --- time
    "dur.d": ("{n}天", "{n} d"),
    "dur.h": ("{n}小时", "{n} h"),
    "dur.m": ("{n}分", "{n} min"),
    "dur.join": ("", " "),
    "list.sep": ("、", ", "),
    "p.colon": ("：", ": "),
    "p.open": ("（", " ("),
    "p.close": ("）", ")"),
    "time.left": ("剩 {d}", "{d} left"),
    "time.late": ("超时 {d}", "{d} late"),
    "time.date": ("{m}月{d}日", "{mon} {d}"),
    "time.date_year": ("{y}年{m}月{d}日", "{mon} {d}, {y}"),
    "time.weekday": ("周一,周二,周三,周四,周五,周六,周日", "Mon,Tue,Wed,Thu,Fri,Sat,Sun"),
    "time.months": ("", "Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec"),
}
_PAIRS.update(_FIELDWORK_PAIRS)  # the patrol, meeting and campaign pages

MESSAGES: dict[str, dict[str, str]] = {
    "zh_CN": {k: zh for k, (zh, _) in _PAIRS.items()},
    "en": {k: en for k, (_, en) in _PAIRS.items()},
}

# What the fields of the forms are called, for validation messages.
FIELD_KEYS = {
    "grid": "field.place",
    "category": "field.category",
    "title": "field.title",
    "description": "field.description",
    "address": "field.address",
    "lat": "field.lat",
    "lon": "field.lon",
    "reporter_name": "field.reporter_name",
    "reporter_phone": "field.reporter_phone",
    "reporter_email": "field.reporter_email",
    "note": "field.note",
    "reason": "field.reason",
    "to_grid": "field.to_grid",
    "until": "field.until",
    "review_on": "field.review_on",
    "handle": "field.handle",
    "password": "field.password",
}


def normalise(lang: str | None) -> str | None:
    """A locale we have for a language tag ("zh", "zh-CN", "en-US" ...), or None."""
    if not lang:
        return None
    tag = lang.strip().lower().replace("-", "_")
    if tag.startswith("zh") or tag == "cn":
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


@dataclass(frozen=True)
class Translator:
    locale: str

    def __call__(self, key: str, **values: Any) -> str:
        text = MESSAGES[self.locale][key]
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in MESSAGES[self.locale]


def api_locale(lang: str | None, accept_language: str | None) -> str:
    """The language of the API's error messages: ?lang=, else the first language of
    Accept-Language we have, else English (what scripts have always read)."""
    asked = normalise(lang)
    if asked is not None:
        return asked
    for part in (accept_language or "").split(","):
        found = normalise(part.split(";")[0])
        if found is not None:
            return found
    return "en"


def translator(locale: str) -> Translator:
    return Translator(locale if locale in MESSAGES else DEFAULT)


# --- durations and times -------------------------------------------------------------------------


def duration(seconds: float, locale: str) -> str:
    """A span people read at a glance: "2天3小时", "3小时20分", "45分" (two units at most)."""
    t = translator(locale)
    minutes = max(0, int(abs(seconds) // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(t("dur.d", n=days))
        if hours:
            parts.append(t("dur.h", n=hours))
    elif hours:
        parts.append(t("dur.h", n=hours))
        if mins:
            parts.append(t("dur.m", n=mins))
    else:
        parts.append(t("dur.m", n=max(mins, 1) if seconds else 0))
    return t("dur.join").join(parts)


def time_left(seconds: float | None, locale: str) -> str:
    """ "剩 3小时20分" before a deadline, "超时 2小时" after it; "" without one."""
    if seconds is None:
        return ""
    t = translator(locale)
    if seconds < 0:
        return t("time.late", d=duration(seconds, locale))
    return t("time.left", d=duration(seconds, locale))


def local_time(
    moment: datetime, locale: str, *, weekday: bool = False, now: datetime | None = None
) -> str:
    """A local time as people write it: "4月1日 09:00" (the year only when it is not this
    year's), optionally with the weekday: "4月3日 周五 17:30"."""
    t = translator(locale)
    months = t("time.months").split(",")
    mon = months[moment.month - 1] if len(months) == 12 else str(moment.month)
    same_year = now is None or now.astimezone(moment.tzinfo).year == moment.year
    key = "time.date" if same_year else "time.date_year"
    text = t(key, y=moment.year, m=moment.month, d=moment.day, mon=mon)
    if weekday:
        text += " " + t("time.weekday").split(",")[moment.weekday()]
    return f"{text} {moment:%H:%M}"


# --- errors ------------------------------------------------------------------------------------

_STATUS_KEYS = {
    403: "err.forbidden",
    404: "err.not_found",
    405: "err.method",
    413: "err.too_large",
    500: "err.server",
}
# What the framework itself answers (an unknown path, a GET on a form's address): its words
# are HTTP's reason phrases, which only the status explains.
_HTTP_PHRASES = frozenset({"not found", "method not allowed", "internal server error"})


def http_error(locale: str, message: str, *, status: int | None = None) -> str:
    """An error that carries no code of `closeloop.errors` (what the framework itself answers:
    an unknown path, a GET on a form's address, a crash) in the reader's language."""
    t = translator(locale)
    first = message.splitlines()[0] if message else ""
    if status in _STATUS_KEYS and (status == 500 or not first or first.lower() in _HTTP_PHRASES):
        return t(_STATUS_KEYS[status])
    return t("err.other", message=message) if message else t("err.forbidden")


def validation_errors(locale: str, errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors of a form as one line: which fields, and what is wrong with them."""
    t = translator(locale)
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        name = loc[-1] if loc else ""
        field = t(FIELD_KEYS[name]) if name in FIELD_KEYS else name
        kind = str(e.get("type", ""))
        if kind == "missing" or (kind == "string_too_short" and e.get("input") == ""):
            parts.append(t("val.missing", field=field))
        elif kind == "string_too_long":
            parts.append(t("val.too_long", field=field))
        else:
            parts.append(t("val.invalid", field=field))
    sep = "；" if locale != "en" else "; "
    return sep.join(parts)
