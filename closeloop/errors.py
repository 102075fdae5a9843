"""Errors the user is to fix, by code: one catalogue says each in Chinese and in English.

An error is raised with a stable code and named parameters, `Invalid("ticket.same_grid",
ref=..., grid=...)`; its English text (what `str()` gives, what logs and scripts read) is made
from the code's template, and the pages, the JSON API and the command line say the same code in
the reader's language with `text()`. Nothing parses a message to find out what it meant.

Parameters are the facts a template names (a ticket's reference, a grid code, a time already
written as people read it); a template may leave some out. Steps and states are passed as their
workflow keys: the English templates say the key (the command line's word), and `text()` asks
`words` for the label a reader of another language knows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from string import Formatter
from typing import Any

LOCALES = ("zh_CN", "en")

# Parameters that hold a workflow step or state key, shown by their label outside English.
WORD_PARAMS = ("step", "state")

# Options the command line names in a message, as a form labels the same field.
FIELD_WORDS: dict[str, tuple[str, str]] = {
    "--note": ("说明", "--note"),
    "--reason": ("理由", "--reason"),
    "--to-grid": ("改派到", "--to-grid"),
    "--until": ("延期至", "--until"),
    "--review-on": ("复查日期", "--review-on"),
}

# code: (zh_CN, en). The English is the wording the command line and the API always had.
CATALOGUE: dict[str, tuple[str, str]] = {
    # --- tickets and their steps
    "ticket.not_found": ("没有找到这个问题，或您无权查看。", "no ticket {ref}"),
    "ticket.changed": (
        "这个问题刚被他人修改，请刷新页面后重试。",
        "{ref} was changed by someone else meanwhile; reload it and try again",
    ),
    "step.not_permitted": (
        "您无权对这个问题执行“{step}”。",
        "{handle} may not {step} {ref}: only {who} may",
    ),
    "step.own_fix": (
        "这是您本人完成的整改，不能由您本人核查，需由其他人员核查。",
        "{handle} fixed {ref} and so may not {step} it: the fix must be checked by someone else",
    ),
    "step.needs": ("请填写：{fields}。", "'{step}' needs {fields}"),
    "step.wrong_state": (
        "这个问题现在是“{state}”，不能执行“{step}”（可能已被他人处理），请刷新页面。",
        "cannot {step} {ticket} that is {state}; '{step}' may run only from: {sources}",
    ),
    "step.unknown": (
        "没有“{step}”这个操作。",
        "cannot {step} {ticket} that is {state}; there is no step '{step}'",
    ),
    "step.unknown_name": (
        "没有“{step}”这个操作；可用：{steps}。",
        "unknown step '{step}'; steps: {steps}",
    ),
    "step.before_latest": (
        "补记时间 {at} 早于这个问题最近一次记录（事件、督办或延期决定）；"
        "{ref} 最早可补记到 {earliest}。",
        "--at {at} is before the ticket's last change (its latest recorded fact: an event, an "
        "escalation rung or an extension decision); history runs forward: the earliest "
        "allowed time for {ref} is {earliest}",
    ),
    "step.backdate_limit": (
        "{handle} 补记操作最多只能提前 {span}；最早可补记到 {earliest}。",
        "{handle} may date a step at most {span} before it is recorded; the earliest allowed "
        "time is {earliest}",
    ),
    "step.backdate_reason": (
        "补记超过 {span} 之前的操作，需要填写理由或说明。",
        "a step dated more than {span} back needs a reason (--reason or --note)",
    ),
    "step.at_naive": (
        "补记时间需要带时区，例如 2026-04-01T09:30:00+08:00。",
        "--at needs a time zone offset, e.g. 2026-04-01T09:30:00+08:00",
    ),
    "step.at_future": (
        "补记时间 {at} 还没到；操作按发生的时间记录。",
        "--at {at} is in the future; a step is recorded when it happened",
    ),
    "step.at_before_change": (
        "补记时间 {at} 早于这个问题最近一次修改（{after}）。",
        "--at {at} is before the ticket's last change ({after}); history runs forward",
    ),
    "ticket.same_grid": ("问题已经在这个网格了。", "{ref} already belongs to grid {grid}"),
    "ticket.no_leader": (
        "这个网格及其上级都没有负责人，无法交办。",
        "no grid from {grid} up to the zone has a leader to assign to",
    ),
    "ticket.problems": ("问题信息有误：{problems}", "{problems}"),
    "ticket.problem_line": ("第 {n} 个问题：{problem}", "problem {n}: {problem}"),
    "ticket.unknown_link": (
        "没有“{kind}”这种关联；可用：{links}。",
        "unknown link {kind!r}; links: {links}",
    ),
    "ticket.due_not_after": (
        "期限 {due} 必须晚于 {when}。",
        "the deadline {due} is not after {when}",
    ),
    "ticket.unknown_state": (
        "没有这个状态：{states}；可用：{known}。",
        "unknown state {states}; states: {known}",
    ),
    "ticket.urgent_already": ("{ref} 已经是紧急问题了。", "{ref} is urgent already"),
    "ticket.source_staff_only": (
        "只有工作人员（令牌或登录）可以填写“群众举报”以外的来源。",
        "only staff (a token or a login) may give a source other than public",
    ),
    "ticket.urgent_supervisor_only": (
        "只有督查人员可以把问题标为紧急。",
        "only a supervisor may file a ticket as urgent",
    ),
    # --- the reporter's feedback and the supervisors' call-backs
    "feedback.satisfaction": (
        "满意度 {satisfaction!r} 有误；可选：{known}。",
        "unknown satisfaction {satisfaction!r}; one of: {known}",
    ),
    "feedback.comment_long": (
        "意见不能超过 {n} 个字。",
        "the comment is longer than {n} characters",
    ),
    "feedback.at_future": ("时间 {at} 还没到。", "--at {at} is in the future"),
    "feedback.not_closed": (
        "{ref} 还没有办结；办结后才请举报人评价。",
        "{ref} is not closed; its reporter is asked once it is",
    ),
    "feedback.answered": (
        "{ref} 办结后举报人已经评价过了。",
        "{ref}: the reporter has answered since it was closed",
    ),
    "feedback.supervisor_only": (
        "只有督查人员可以回访。",
        "{handle} is not a supervisor; call-backs are the supervisors'",
    ),
    "feedback.callback_not_closed": (
        "{ref} 还没有办结；回访在办结之后。",
        "{ref} is not closed; a call-back follows the closure",
    ),
    "feedback.before_closed": (
        "时间 {at} 早于 {ref} 办结的时间。",
        "--at {at} is before {ref} was closed",
    ),
    # --- extensions and deferrals
    "extension.no_deadline": ("{ref} 没有可以延期的期限。", "{ref} has no deadline to extend"),
    "extension.not_later": (
        "延期时间必须晚于当前期限。",
        "--until {until} must be later than the current deadline {due}",
    ),
    "extension.pending": (
        "已有一个延期申请在等待审批，请等督查人员处理后再申请。",
        "{ref} already has an extension request waiting (until {until}); a supervisor must "
        "approve or refuse it first",
    ),
    "extension.none_waiting": (
        "没有待审批的延期申请。",
        "{ref} has no extension request waiting for a decision",
    ),
    "extension.passed": (
        "申请的延期时间已过，请驳回后重新申请。",
        "the requested deadline {until} has already passed; refuse this request and ask for a "
        "new one",
    ),
    "deferral.review_past": (
        "复查日期必须在今天之后。",
        "--review-on {review_on} must be in the future",
    ),
    "deferral.not_deferred": ("{ref} 不在缓办登记中。", "{ref} is not on the deferral register"),
    # --- grids, people, categories
    "grid.unknown": ("没有这个网格。", "unknown grid '{code}'"),
    "grid.unknown_quoted": ("没有这个网格：{code}。", "unknown grid {code!r}"),
    "grid.unknown_id": ("没有这个网格。", "unknown grid id {grid_id}"),
    "grid.none_stored": (
        "还没有任何网格，请先运行 `closeloop init`。",
        "no grid is stored yet; run `closeloop init`",
    ),
    "person.unknown": ("没有这个账号。", "unknown person '{handle}'"),
    "person.not_supervisor": ("{handle} 不是督查人员。", "{handle} is not a supervisor"),
    "person.not_admin": ("只有管理员可以使用此页面。", "{handle} is not an administrator"),
    "person.no_role": (
        "{handle} 既不负责网格，也不是督查人员。",
        "{handle} leads no grid and is no supervisor",
    ),
    "person.supervisor_only": (
        "只有督查人员可以{what}。",
        "{handle} may not {what}: only a supervisor may",
    ),
    "category.unknown": ("请选择问题类型。", "unknown category '{key}'; known: {known}"),
    "channel.unknown": (
        "通知方式有误：没有 {channels}；可用：{known}。",
        "unknown channel {channels}; known: {known}",
    ),
    "channel.webhook_address": (
        "Webhook 地址须以 http:// 或 https:// 开头，不超过 500 个字符。",
        "the webhook must be an http(s) address of at most 500 characters",
    ),
    "channel.webhook_missing": (
        "选了 Webhook 就必须填 Webhook 地址。",
        "the webhook channel needs a webhook address",
    ),
    # --- the map
    "geo.outside": (
        "位置 {lat:.6f}, {lon:.6f} 不在任何网格内，请选择网格。",
        "the point {lat:.6f}, {lon:.6f} is outside every grid: name a grid instead",
    ),
    "geo.no_geometry": (
        "本区还没有网格边界，无法按位置找网格，请选择网格。",
        "this zone has no grid geometry to find a grid by location: name a grid instead",
    ),
    "geo.grid_or_point": (
        "请选择网格，或同时给出纬度和经度。",
        "name a grid, or give both latitude and longitude to find it",
    ),
    "geo.map_supervisor_only": (
        "只有督查人员可以查看地图。",
        "{handle} may not see the map: only a supervisor may",
    ),
    # --- files given on the command line
    "file.not_found": ("找不到文件：{path}", "file not found: {path}"),
    "file.folder_not_csv": (
        "{path} 是文件夹，不是 CSV 文件。",
        "{path} is a folder, not a CSV file",
    ),
    "file.folder_not_geojson": (
        "{path} 是文件夹，不是 GeoJSON 文件。",
        "{path} is a folder, not a GeoJSON file",
    ),
    "file.not_utf8": ("{path} 不是 UTF-8 文本。", "{path} is not UTF-8 text"),
    "file.empty": ("{path} 是空文件。", "{path} is empty"),
    # --- options of the command line
    "option.locale": (
        "没有 {locale!r} 这种语言；可用：{locales}。",
        "unknown locale {locale!r}; locales: {locales}",
    ),
    "option.format": (
        "没有 {fmt!r} 这种格式；可用：{formats}。",
        "unknown format {fmt!r}; formats: {formats}",
    ),
    "option.format_needs_out": (
        "{fmt} 格式需要 --out 文件。",
        "--format {fmt} needs --out FILE",
    ),
    "option.this_format_needs_out": ("这种格式需要 --out 文件。", "this format needs --out FILE"),
    "option.week_or_month": ("--week 和 --month 只能给一个。", "give --week or --month, not both"),
    "option.workers": ("--workers 至少为 1。", "--workers must be at least 1"),
    "option.sqlite_workers": (
        "SQLite 只能由一个进程服务（只有一个写入者）；--workers 需要 PostgreSQL。",
        "SQLite is served by one process (it has one writer); --workers needs PostgreSQL "
        "([database] url or CLOSELOOP_DB)",
    ),
    "option.bad_time": (
        "{field} {text!r} 不是时间，例如 2026-04-07T09:00。",
        "{field} {text!r} is not a time like 2026-04-07T09:00",
    ),
    "database.missing_tables": (
        "数据库缺少表 {tables}，请先运行 `closeloop init`。",
        "the database lacks the table(s) {tables}; run `closeloop init` first",
    ),
    # --- photos and uploads
    "evidence.type": (
        "照片只能是 JPG、PNG、GIF、WebP 图片或 PDF 文件。",
        "evidence must be a photo (JPEG, PNG, GIF, WebP) or a PDF",
    ),
    "evidence.empty": ("有一张照片是空文件。", "{name}: the file is empty"),
    "evidence.too_large": (
        "照片太大了，请换一张小一些的。",
        "{name}: {size} bytes is more than the {max_bytes} allowed",
    ),
    "evidence.unreadable": (
        "无法读取照片文件 {path}：{reason}",
        "cannot read evidence file {path}: {reason}",
    ),
    "evidence.bad_name": ("照片文件名有误。", "bad evidence name"),
    "evidence.not_found": ("没有这张照片。", "no evidence {evidence_id}"),
    "evidence.file_missing": (
        "服务器上找不到这张照片的文件。",
        "the file of evidence {evidence_id} is missing on the server",
    ),
    "upload.too_large": (
        "照片太大了，请换一张小一些的。",
        "{name} is larger than the {max_bytes} bytes allowed",
    ),
    "upload.too_many": (
        "照片太多了，最多 {max_photos} 张。",
        "at most {max_photos} photos per report or step, not {count}",
    ),
    "upload.too_many_exam": ("照片太多了。", "too many photos"),
    "upload.too_large_exam": (
        "照片太大了，请换一张小一些的。",
        "{name} is larger than {max_bytes} bytes",
    ),
    "upload.empty": ("有一张照片是空文件。", "{name} is empty"),
    "upload.media_type": (
        "只接受 application/json 或 multipart/form-data 格式。",
        "send application/json or multipart/form-data, not {ctype}",
    ),
    "request.json_depth": (
        "请求内容的 JSON 嵌套超过 {depth} 层。",
        "the JSON is nested deeper than {depth} levels",
    ),
    "request.unknown_field": (
        "没有这个字段（可能拼写有误，或是更新版本才有的字段），请改正或删去。",
        "unknown field: not part of this request (misspelt, or from a newer version); "
        "correct or remove it",
    ),
    # What is wrong with one field of an API request (pydantic's finding, said by its kind).
    "request.missing": ("缺少这个字段。", "required"),
    "request.text_too_long": (
        "太长：最多 {limit} 个字符。",
        "too long: at most {limit} characters",
    ),
    "request.text_too_short": (
        "太短：至少 {limit} 个字符。",
        "too short: at least {limit} characters",
    ),
    "request.too_many": ("太多：最多 {limit} 项。", "too many: at most {limit} items"),
    "request.too_few": ("太少：至少 {limit} 项。", "too few: at least {limit} items"),
    "request.pattern": ("格式不对（应符合 {pattern}）。", "must match {pattern}"),
    "request.choice": ("只能是 {expected}。", "must be {expected}"),
    "request.at_least": ("不能小于 {limit}。", "must be at least {limit}"),
    "request.at_most": ("不能大于 {limit}。", "must be at most {limit}"),
    "request.above": ("必须大于 {limit}。", "must be greater than {limit}"),
    "request.below": ("必须小于 {limit}。", "must be less than {limit}"),
    "request.time": (
        "不是有效的时间：请用 ISO 8601 格式并带时区，如 2026-04-02T09:00:00+08:00。",
        "not a valid time: give ISO 8601 with an offset, e.g. 2026-04-02T09:00:00+08:00",
    ),
    "request.wrong_type": ("类型不对：应为{kind}。", "must be {kind}"),
    "request.bad_value": ("取值无效。", "{reason}"),
    "request.time_range": (
        "时间必须在 2000 年到 2200 年之间。",
        "must be a time between the years 2000 and 2200",
    ),
    "request.not_a_number": (
        "必须是数字，不能是 true 或 false。",
        "must be a number, not true or false",
    ),
    "request.malformed_json": (
        "请求内容不是有效的 JSON：{problems}",
        "the body is not valid JSON: {problems}",
    ),
    # Text a person typed that cannot be stored.
    "text.surrogate": (
        "含有无效的 Unicode 字符（孤立的代理码位）。",
        "must be valid Unicode text (it contains a lone surrogate)",
    ),
    "text.nul": ("不能含有 NUL 字符。", "must not contain NUL characters"),
    "text.invisible": ("必须含有看得见的字符。", "must contain visible characters"),
    "request.nul": (
        "网址中不能有 NUL 字符。",
        "the URL must not contain NUL characters",
    ),
    "request.too_large": (
        "提交的内容太大了。",
        "the request body of {length} bytes is larger than the {cap} allowed",
    ),
    # --- accounts, sessions, tokens
    "auth.login_needed": ("请先登录。", "log in, or send 'Authorization: Bearer <token>'"),
    "auth.login_or_secret": (
        "请先登录，或提供举报时给出的查询码。",
        "log in, send a token, or give the reporter's secret",
    ),
    "auth.bad_header": (
        "Authorization 头必须是“Bearer <令牌>”。",
        "the Authorization header must be 'Bearer <token>'",
    ),
    "auth.bad_token": ("API 令牌无效或已撤销。", "unknown or revoked API token"),
    "auth.login_failed": ("账号或密码不对。", "wrong handle or password"),
    "auth.login_limited": (
        "登录失败次数太多，请 {minutes} 分钟后再试。",
        "too many failed logins for '{handle}'; try again in {minutes} minutes",
    ),
    "auth.login_limited_here": (
        "这个地址登录失败次数太多，请 {minutes} 分钟后再试。",
        "too many failed logins for '{handle}' from this address; try again in {minutes} minutes",
    ),
    "auth.csrf_missing": (
        "页面已过期，请返回、刷新页面后再提交。",
        "the form's CSRF token is missing; reload the page and try again",
    ),
    "auth.csrf_wrong": (
        "页面已过期，请返回、刷新页面后再提交。",
        "the form's CSRF token is wrong; reload the page and try again",
    ),
    "auth.password_short": ("密码至少需要 {n} 位。", "a password needs at least {n} characters"),
    "auth.password_long": ("密码最多 {n} 位。", "a password may have at most {n} characters"),
    "auth.password_wrong": ("当前密码不对。", "the current password is wrong"),
    "auth.token_label": (
        "令牌说明最多 100 个字符。",
        "a token label may have at most 100 characters",
    ),
    "auth.token_source": (
        "没有 {source!r} 这种来源；可用：{sources}。",
        "unknown source {source!r}; sources: {sources}",
    ),
    "auth.person_disabled": (
        "{handle} 已停用，请先启用再创建令牌。",
        "{handle} is disabled; enable them before making a token",
    ),
    "auth.token_not_found": ("没有这个令牌。", "no token {token_id}"),
    "auth.token_by_token": (
        "API 令牌不能创建令牌；请登录，或运行 closeloop token。",
        "an API token cannot create tokens; log in, or run closeloop token",
    ),
    "auth.token_for_others": (
        "{handle} 只能为自己创建令牌。",
        "{handle} may create tokens only for themselves",
    ),
    "auth.disable_self": ("不能停用自己的账号。", "administrators cannot disable themselves"),
    "quota.reports": (
        "这个地址一小时内举报太多（{count} 次），请 {minutes} 分钟后再试，或登录后举报。",
        "too many reports from this address ({count} in the last hour); try again in "
        "{minutes} minutes, or log in",
    ),
    "quota.photos": (
        "这个地址今天上传的照片超过 {limit} 字节；请不带照片提交，或登录后举报。",
        "the photos from this address today exceed {limit} bytes; send the report without "
        "photos, or log in",
    ),
    # --- Idempotency-Key
    "idempotency.bad_key": (
        "{header} 必须是 1 到 {max_key} 个可见 ASCII 字符。",
        "{header} must be 1 to {max_key} visible ASCII characters",
    ),
    "idempotency.taken_over": (
        "另一个使用同一 {header} 的请求接手了，请重新发送以取得结果。",
        "another request with this {header} took over; send it again to get its answer",
    ),
    "idempotency.running": (
        "使用同一 {header} 的请求还在处理，请稍后重新发送。",
        "a request with this {header} is still running; send it again in a moment",
    ),
    "idempotency.reused": (
        "这个 {header} 已用于另一个请求；新请求请用新的键。",
        "this {header} was used for another request; use a new key for a new request",
    ),
    # --- Open311
    "open311.jurisdiction": ("没有 {given} 这个辖区。", "jurisdiction_id '{given}' was not found"),
    "open311.no_key": ("缺少 api_key。", "api_key was not provided"),
    "open311.bad_key": ("api_key 无效或已撤销。", "api_key is invalid or revoked"),
    "open311.service": ("没有 {code} 这个服务。", "service_code '{code}' was not found"),
    "open311.fields": ("提交内容必须是一组字段。", "the body must be a set of fields"),
    "open311.content_type": (
        "请用 application/x-www-form-urlencoded（或 JSON）提交。",
        "send application/x-www-form-urlencoded (or JSON)",
    ),
    "open311.invalid": ("{where}：{problem}", "{where}: {problem}"),
    "open311.lat_long": ("lat 和 long 要么都填，要么都不填。", "lat and long go together"),
    "open311.location": (
        "需要位置：lat 和 long、address_string 或 address_id。",
        "a location is required: lat and long, address_string or address_id",
    ),
    "open311.grid_missing": (
        "缺少 attribute[grid]（网格代码），或 lat 和 long。",
        "required attribute missing: attribute[grid] (a grid code), or lat and long",
    ),
    "open311.grid": ("{problem}（attribute[grid]）", "{problem} (attribute[grid])"),
    "open311.too_many": ("{what} 最多 {max_items} 个值。", "at most {max_items} values in {what}"),
    "open311.status": (
        "status 只能是 open 或 closed，不能是 {bad}。",
        "status must be open or closed, not {bad}",
    ),
    "open311.request": (
        "没有 {request_id} 这个请求。",
        "service_request_id '{request_id}' was not found",
    ),
    # --- pages
    "page.no_file": ("没有这个文件。", "no file {name}"),
    "page.no_report_format": ("没有 {fmt} 这种报表格式。", "no report format {fmt}"),
    "report.supervisor_only": (
        "只有督查人员可以查看报表。",
        "{handle} may not see the reports: only a supervisor may",
    ),
    "report.api_supervisor_only": (
        "只有督查人员可以查看报表。",
        "{handle} is not a supervisor; reports are for supervisors",
    ),
    # --- the weekly report
    "report.bad_week": (
        "{label!r} 不是 ISO 周，例如 2026-W14。",
        "week {label!r} is not an ISO week like 2026-W14",
    ),
    "report.no_week": ("没有 {label!r} 这一周。", "week {label!r} does not exist"),
    "report.week_open": (
        "这一周还没有结束：周报在整周结束后才能生成。",
        "week {label} has not ended yet; a report covers a whole week",
    ),
    "report.level": (
        "--level 只能是 2、3 或 4，不能是 {level}。",
        "--level must be 2, 3 or 4 (the grids listed), not {level}",
    ),
    "report.unknown_figure": (
        "没有 {figure} 这个指标；可用：{figures}。",
        "unknown figure '{figure}'; figures: {figures}",
    ),
    "report.example_note": (
        "请说明为什么选这个网格作为典型。",
        "--note must say why this grid is the example",
    ),
    "report.no_chromium": (
        "生成 PDF 需要 {chromium} 的 Chromium（Debian 软件包 chromium）。",
        "--format pdf needs Chromium at {chromium} (Debian package chromium)",
    ),
    "month.malformed": ("月份有误：{reason}", "{reason}"),
    # --- the monthly exam, accountability, funds
    "exam.file_refused": ("考核文件未导入：{problems}", "{problems}"),
    "exam.stored_meanwhile": (
        "另一次导入同时写入了其中的部分行；本次没有写入任何内容。",
        "another import stored some of these lines meanwhile; nothing was written",
    ),
    "exam.inspectors_unknown": (
        "[exam] inspectors 中的网格不存在：{codes}",
        "[exam] inspectors: unknown grid(s) {codes}",
    ),
    "exam.inspectors_empty": (
        "[exam] inspectors 为空：请列出考核网格再生成考核安排。",
        "[exam] inspectors is empty: list the inspecting grids to make a plan",
    ),
    "exam.no_lines": (
        "{month} 还没有考核成绩；请用 `closeloop exam import` 导入。",
        "no exam lines for {month}; import them with `closeloop exam import`",
    ),
    "exam.no_owner": (
        "没有督查人员负责问责事项：请设置 [exam] accountability_owner。",
        "no supervisor to own the accountability case: set [exam] accountability_owner",
    ),
    "exam.board_missing": (
        "{month} 的月考榜还没有发布。",
        "the board of {month} is not published; run `closeloop exam board`",
    ),
    "exam.plan_refused": ("考核安排无法生成：{reason}", "{reason}"),
    "exam.plan_started": (
        "{month} 已开始打分，考核安排不能再改。",
        "scoring of {month} has started; its plan can no longer change",
    ),
    "exam.no_plan": (
        "{month} 还没有考核安排。",
        "no plan for {month}; make it with `closeloop exam plan --month {month}`",
    ),
    "exam.not_in_plan": (
        "{grid} 不在 {month} 的考核安排中。",
        "grid {grid} is not in the plan of {month}",
    ),
    "exam.not_inspector": (
        "您不负责 {month} 对 {grid} 的考核。",
        "{handle} does not inspect {grid} in {month}",
    ),
    "exam.submitted": (
        "{grid} {month} 的打分已提交；督查人员可以退回。",
        "the scores of {grid} in {month} are submitted; a supervisor can reopen them",
    ),
    "exam.published": (
        "{month} 的月考榜已发布，成绩不能再改。",
        "the board of {month} is published; its scores can no longer change",
    ),
    "exam.not_submitted": (
        "{grid} {month} 的打分还没有提交。",
        "the scores of {grid} in {month} are not submitted",
    ),
    "exam.reopen_reason": ("退回需要填写原因。", "reopening needs a reason"),
    "exam.no_photo": (
        "没有 {grid} {month} {item} 的照片。",
        "no photo for {item} of {grid} in {month}",
    ),
    "exam.no_result": (
        "{grid} 没有 {month} 已发布的成绩。",
        "{grid} has no published result for {month}",
    ),
    "exam.inspector_no_grid": (
        "{month} 的考核安排中没有考核网格 {inspector} 的任务。",
        "no grid in the plan of {month} for inspector {inspector}",
    ),
    "accountability.not_found": ("没有问责事项 {case_id}。", "no accountability case {case_id}"),
    "accountability.closed": (
        "问责事项 {case_id} 已结案。",
        "accountability case {case_id} is already closed",
    ),
    "accountability.outcome": ("结案需要填写处理结果。", "closing a case needs its outcome"),
    "funds.not_number": ("金额 {text!r} 不是数字。", "amount {text!r} is not a number"),
    "funds.not_positive": ("金额 {text!r} 必须大于 0。", "amount {text!r} must be greater than 0"),
    "funds.decimals": (
        "金额 {text!r} 最多两位小数。",
        "amount {text!r} has more than two decimals",
    ),
    "funds.nothing_earned": (
        "当月没有奖励（未达标，或因扣分暂停）。",
        "no reward was earned that month (none reached, or withheld by a deduction)",
    ),
    "funds.over_earned": (
        "支付 {amount} 将超过应得奖励（{earned}，已付 {paid}）。",
        "paying {amount} would exceed the reward earned ({earned}, already paid {paid})",
    ),
    "funds.decided": ("这个项目已经审批过了。", "the project is already decided"),
    "funds.over_applied": (
        "批准金额 {approved} 不能超过申请的 {applied}。",
        "cannot approve {approved}, more than the {applied} applied for",
    ),
    "funds.not_approved": ("这个项目还没有批准。", "the project is not approved yet"),
    "funds.refused": ("这个项目未获批准。", "the project was refused"),
    "funds.over_approved": (
        "拨付 {amount} 将超过批准的 {approved}（已拨 {disbursed}）；专款专用。",
        "disbursing {amount} would exceed the {approved} approved (already {disbursed}); funds "
        "are earmarked for the project",
    ),
    "funds.project_fields": ("项目需要填写名称和用途。", "a project needs its name and purpose"),
    "funds.no_project": ("没有项目 {project_id}。", "no project {project_id}"),
    # --- campaigns, rectification, patrols, meetings
    "campaign.not_found": ("没有大会战 {campaign_id}。", "no campaign {campaign_id}"),
    "campaign.problems": ("大会战信息有误：{problems}", "{problems}"),
    "campaign.findings_refused": (
        "问题清单未导入：{problems}",
        "the findings file is refused: {problems}",
    ),
    "campaign.grid_outside": (
        "网格 {code} 不在本次大会战的村中（{villages}）。",
        "grid {code} is not in the campaign's villages ({villages})",
    ),
    "rectify.level": (
        "--level 只能是 2、3 或 4，不能是 {level}。",
        "--level must be 2, 3 or 4, not {level}",
    ),
    "rectify.focus_long": (
        "重点内容不能超过 {n} 个字。",
        "the focus is longer than {n} characters",
    ),
    "rectify.not_found": (
        "{grid} 没有 {month} 的整治记录；请先运行 `closeloop rectify plan --month {month}`。",
        "no rectification of {grid} in {month}; `closeloop rectify plan --month {month}`",
    ),
    "rectify.problems": ("整治事项有误：{problems}", "{problems}"),
    "rectify.no_item": ("没有整治事项 {item_id}。", "no rectification item {item_id}"),
    "rectify.not_permitted": (
        "您无权勾销 {code} 的整治事项：只有该网格负责人或成员、上级负责人或督查人员可以。",
        "{by} may not tick off items of {code}: only its leader or members, a leader above or "
        "a supervisor may",
    ),
    "rectify.item_is_ticket": (
        "事项 {item_id} 是一个问题单：问题办结时自动勾销。",
        "item {item_id} is a ticket: it is ticked off when the ticket closes",
    ),
    "rectify.item_done": ("事项 {item_id} 已经勾销了。", "item {item_id} is already ticked off"),
    "patrol.unknown_person": ("没有这个账号。", "unknown person '{handle}'"),
    "patrol.problems": ("巡查信息有误：{problems}", "{problems}"),
    "patrol.note_long": ("说明不能超过 {n} 个字。", "the note is longer than {n} characters"),
    "patrol.not_found": ("没有巡查记录 {patrol_id}。", "no patrol {patrol_id}"),
    "patrol.not_yours": (
        "巡查 {patrol_id} 属于 {handle}，只有本人可以签到。",
        "patrol {patrol_id} is {handle}'s; only they check in on it",
    ),
    "patrol.level": (
        "--level 只能是 1、2、3 或 4，不能是 {level}。",
        "--level must be 1, 2, 3 or 4, not {level}",
    ),
    "meeting.problems": ("会议信息有误：{problems}", "{problems}"),
    "meeting.not_found": ("没有会议 {meeting_id}。", "no meeting {meeting_id}"),
    "meeting.format": (
        "没有 {fmt!r} 这种格式；可用：md、html。",
        "unknown format {fmt!r}; formats: md, html",
    ),
    # --- notices and their delivery
    "notice.not_found": ("没有通知 {notice_id}。", "no notice {notice_id}"),
    "notice.not_dead": (
        "通知 {notice_id} 的状态是 {status}；只有发送失败的通知可以重发。",
        "notice {notice_id} is {status}; only a dead notice can be retried",
    ),
    "notice.cannot_render": ("无法生成通知：{reason}", "{reason}"),
    "notice.unknown_template": (
        "没有 {kind!r} 这个通知模板；可用：{kinds}。",
        "unknown template {kind!r}; templates: {kinds}",
    ),
    "notice.weekly_preview": (
        "周报通知不针对某个问题，请预览周报本身。",
        "weekly_report is not about a ticket; it is previewed by the report",
    ),
    "notice.nobody": (
        "{ref} 没有可以接收“{kind}”通知的人；请用 --to 指定。",
        "{ref} has nobody to send a {kind} notice to; name one with --to",
    ),
    "notice.never_rejected": (
        "{ref} 从未被驳回，没有驳回理由可显示。",
        "{ref} was never rejected; there is no reason to show",
    ),
    "notice.no_deadline": (
        "{ref} 没有正在计时的期限。",
        "{ref} has no running deadline to remind of",
    ),
    "notice.never_escalated": (
        "{ref} 从未升级督办，没有督办通知。",
        "{ref} was never escalated; there is no supervision notice",
    ),
    "notice.payload_int": (
        "{kind} 通知 {id}：内容缺少整数 {key!r}。",
        "{kind} notice {id}: payload has no integer {key!r}",
    ),
    "notice.payload_time": (
        "{kind} 通知 {id}：内容中的 {key!r} 不是带时区的 ISO 时间。",
        "{kind} notice {id}: payload {key!r} is not an ISO time with a zone",
    ),
    "notice.no_ticket_id": ("问题 id {ticket_id} 不存在。", "ticket id {ticket_id} does not exist"),
    "notice.no_escalation": (
        "督办记录 {escalation_id} 不存在。",
        "escalation {escalation_id} does not exist",
    ),
    "notice.no_person": (
        "通知 {id}：人员 id {recipient_id} 不存在。",
        "notice {id}: person id {recipient_id} does not exist",
    ),
    "notice.unknown_channel": (
        "通知 {id}：没有 {channel!r} 这种通知方式；可用：{known}。",
        "notice {id}: unknown channel {channel!r}; known: {known}",
    ),
    "notice.no_address": (
        "{who} 没有 {channel} 方式所需的 {column} 地址。",
        "{who} has no {column} address for the {channel} channel",
    ),
    "notice.weekly_week": (
        "周报通知 {id}：内容缺少 'week'。",
        "weekly_report notice {id}: payload has no 'week'",
    ),
    "notice.weekly_summary": (
        "周报通知 {id}：'summary' 必须是若干行。",
        "weekly_report notice {id}: 'summary' must be a list of lines",
    ),
    "notice.weekly_file": (
        "周报文件 {path} 不存在，也没有网址。",
        "weekly report file {path} is missing and there is no url",
    ),
    "notice.weekly_where": (
        "周报通知 {id}：既没有 'url' 也没有 'file'。",
        "weekly_report notice {id}: neither 'url' nor 'file'",
    ),
    "notice.minutes_missing": (
        "会议纪要通知 {id}：内容缺少 {missing}。",
        "meeting_minutes notice {id}: payload has no {missing}",
    ),
    "notice.minutes_summary": (
        "会议纪要通知 {id}：'summary' 必须是若干行。",
        "meeting_minutes notice {id}: 'summary' must be a list of lines",
    ),
    "notice.case_missing": (
        "问责通知 {id}：内容缺少 {missing}。",
        "accountability notice {id}: payload has no {missing}",
    ),
    "notice.case_preview": (
        "问责通知不针对某个问题，请在问责页面查看问责事项。",
        "an accountability notice is not about a ticket; see the case on the accountability page",
    ),
    "notice.no_ticket": (
        "{kind} 通知 {id} 不针对任何问题。",
        "{kind} notice {id} is about no ticket",
    ),
    "notice.reminder_fraction": (
        "提醒通知 {id}：内容缺少数字 'fraction'。",
        "reminder notice {id}: payload has no number 'fraction'",
    ),
    "notice.rejection_reason": (
        "驳回通知 {id}：内容缺少 'reason'。",
        "rejection notice {id}: payload has no 'reason'",
    ),
    "notice.unknown_kind": (
        "通知 {id}：没有 {kind!r} 这种通知。",
        "notice {id}: unknown kind {kind!r}",
    ),
    # --- configuration and files
    # The command line's own refusals (closeloop/cli: `fail`).
    "option.time_not_iso": (
        "{option} {text!r} 不是 ISO 8601 时间，例如 2026-04-01T09:30:00+08:00。",
        "{option} {text!r} is not an ISO 8601 time, e.g. 2026-04-01T09:30:00+08:00",
    ),
    "option.time_naive": (
        "{option} {text!r} 需要带时区，例如 2026-04-01T09:30:00+08:00。",
        "{option} {text!r} needs a time zone offset, e.g. 2026-04-01T09:30:00+08:00",
    ),
    "cli.grid_or_point": (
        "请用 --grid 指定网格，或给出 --lat 和 --lon 按位置查找。",
        "name the grid with --grid, or give --lat and --lon to find it",
    ),
    "cli.solved": (
        "--solved 只能是 yes 或 no，不能是 {solved!r}。",
        "--solved must be yes or no, not {solved!r}",
    ),
    "cli.fresh_sqlite": (
        "--fresh 只能删除 SQLite 数据库。",
        "--fresh only deletes SQLite databases",
    ),
    "cli.checkin_coordinates": (
        "--grid {text!r}：坐标应写成 网格代码@纬度,经度，例如 JS-A1-V01-G01@29.1,119.6。",
        "--grid {text!r}: coordinates are CODE@LAT,LON, e.g. JS-A1-V01-G01@29.1,119.6",
    ),
    "cli.passwords_differ": (
        "两次输入的密码不一致；没有做任何修改。",
        "the two passwords differ; nothing was changed",
    ),
    "cli.aborted": ("已取消。", "aborted"),
    "config.notifiers": ("[notifiers] 设置有误：{reason}", "{reason}"),
    "outbox.status": (
        "没有 {status!r} 这种状态；可用：{statuses}。",
        "unknown status {status!r}; statuses: {statuses}",
    ),
    "outbox.limit": ("--limit 至少为 1。", "--limit must be at least 1"),
    "database.refused": ("数据库拒绝了操作：{said}", "the database refused: {said}"),
    "database.refused_schema": (
        "数据库拒绝了操作：{said}；`closeloop init` 可以创建或升级数据库结构。",
        "the database refused: {said}; `closeloop init` creates or upgrades the schema",
    ),
    # config.toml, read at start-up and by `closeloop check`
    "config.not_found": ("找不到配置文件：{path}", "config file not found: {path}"),
    "config.not_toml": ("{path} 不是有效的 TOML：{reason}", "{path}: {reason}"),
    "config.not_table": ("[{name}] 必须是一个表。", "[{name}] must be a table"),
    "config.timezone": (
        "[{where}] timezone：没有时区 {tz!r}。",
        "[{where}] timezone: unknown time zone {tz!r}",
    ),
    "config.locale": (
        "[zone] locale 只能是 'zh_CN' 或 'en'，不能是 {locale!r}。",
        "[zone] locale must be 'zh_CN' or 'en', not {locale!r}",
    ),
    "config.person_fields": (
        "[[people]] 第 {n} 项：需要 'handle' 和 'name'。",
        "[[people]] entry {n}: needs 'handle' and 'name'",
    ),
    "config.whole": (
        "[{where}] {key}：必须是不小于 {low} 的整数，现在是 {value!r}。",
        "[{where}] {key}: must be a whole number >= {low}, got {value!r}",
    ),
    "config.string": (
        "[{where}] {key}：必须是字符串，现在是 {value!r}。",
        "[{where}] {key}: must be a string, got {value!r}",
    ),
    "config.unknown_keys": (
        "[{where}] 中的键不认识：{unknown}（可用：{known}）。",
        "[{where}] unknown key(s) {unknown} (expected {known})",
    ),
    "config.grid_level": (
        "[{where}] level：网格只有 1 到 4 级，现在是 {level}。",
        "[{where}] level: the grid has levels 1 to 4, got {level}",
    ),
    "config.secure_cookies": (
        '[web] secure_cookies 只能是 "auto"、true 或 false，不能是 {value!r}。',
        '[web] secure_cookies must be "auto", true or false, not {value!r}',
    ),
    "config.web_string": (
        "[{where}] {key} 必须是字符串，不能是 {value!r}。",
        "[{where}] {key} must be a string, not {value!r}",
    ),
    "config.web_flag": (
        "[{where}] {key} 只能是 true 或 false，不能是 {value!r}。",
        "[{where}] {key} must be true or false, not {value!r}",
    ),
    "config.web_positive": (
        "[{where}] {key} 必须是正数，不能是 {value!r}。",
        "[{where}] {key} must be a positive number, not {value!r}",
    ),
    "config.web_at_least": (
        "[{where}] {key} 至少为 {floor:g}，不能是 {value!r}。",
        "[{where}] {key} must be at least {floor:g}, not {value!r}",
    ),
    "config.web_seconds": (
        "[{where}] {key} 必须是整数秒，不能是 {value!r}。",
        "[{where}] {key} must be a whole number of seconds, not {value!r}",
    ),
    "config.web_count": (
        "[{where}] {key} 必须是正整数，不能是 {value!r}。",
        "[{where}] {key} must be a whole number of at least 1, not {value!r}",
    ),
    "config.composite_table": (
        "[report.composite] 必须是权重和等级分数线组成的表。",
        "[report.composite]: a table of weights and grade limits",
    ),
    "config.composite_rate": (
        "[{where}] {key}：不是一个比率；权重只能用于 {rates}。",
        "[{where}] {key}: not a rate; weights may name {rates}",
    ),
    "config.composite_weight": (
        "[{where}] {key}：权重必须不小于 0，现在是 {value!r}。",
        "[{where}] {key}: a weight >= 0, got {value!r}",
    ),
    "config.composite_grades": (
        "[{where}] grades：必须是一个表，例如 {{ A = 90, B = 75 }}。",
        "[{where}] grades: a table like {{ A = 90, B = 75 }}",
    ),
    "config.composite_limit": (
        "[{where}] grades.{letter}：必须是数字，现在是 {value!r}。",
        "[{where}] grades.{letter}: a number, got {value!r}",
    ),
    "config.composite_lowest": (
        '[{where}] lowest：所有分数线以下的等级，例如 "E"。',
        '[{where}] lowest: the grade below every limit, e.g. "E"',
    ),
    "config.exam_scoring": ("[exam] 评分设置有误：{problem}", "[exam] {problem}"),
    "config.inspectors_list": (
        "[exam] inspectors：必须是网格代码的列表。",
        "[exam] inspectors: must be a list of grid codes",
    ),
    "config.inspectors_twice": (
        "[exam] inspectors：有网格列了两次。",
        "[exam] inspectors: a grid is listed twice",
    ),
    "config.sheets_file": (
        "[exam] sheets_file 答题卡文件有误：{problem}",
        "[exam] sheets_file: {problem}",
    ),
    "config.tolerance": (
        "[geometry] tolerance_m 必须是不小于 0 的数，不能是 {value!r}。",
        "[geometry] tolerance_m must be a number ≥ 0, not {value!r}",
    ),
    "config.delivery_keys": (
        "[notifiers.delivery] 中的键不认识：{unknown}；可用：{known}。",
        "[notifiers.delivery] unknown key(s) {unknown}; known: {known}",
    ),
    "config.delivery_number": (
        "[notifiers.delivery] {key} = {value!r} 必须是正数。",
        "[notifiers.delivery] {key} = {value!r} must be a positive number",
    ),
    "config.delivery_at_least_one": (
        "[notifiers.delivery] batch 和 max_attempts 至少为 1。",
        "[notifiers.delivery] batch and max_attempts must be at least 1",
    ),
    "config.delivery_jitter": (
        "[notifiers.delivery] jitter 必须不小于 0 且小于 1。",
        "[notifiers.delivery] jitter must be at least 0 and below 1",
    ),
    "config.delivery_backoff": (
        "[notifiers.delivery] backoff_base_seconds 必须大于 0，且不大于 backoff_max_seconds。",
        "[notifiers.delivery] backoff_base_seconds must be positive and at most "
        "backoff_max_seconds",
    ),
    "config.delivery_lease": (
        "[notifiers.delivery] lease_seconds 至少为 10。",
        "[notifiers.delivery] lease_seconds must be at least 10",
    ),
    "config.digest_not_text": (
        '[notifiers.digest] schedule = {text!r}：应写成例如 "daily 17:30"。',
        '[notifiers.digest] schedule = {text!r}: expected e.g. "daily 17:30"',
    ),
    "config.digest_short": (
        "[notifiers.digest] schedule {text!r} 短于一分钟。",
        "[notifiers.digest] schedule {text!r} is shorter than a minute",
    ),
    "config.digest_unreadable": (
        '[notifiers.digest] schedule {text!r}：请用 "daily HH:MM"、"every <n>h"、"every <n>m" '
        '或 "off"。',
        '[notifiers.digest] schedule {text!r}: use "daily HH:MM", "every <n>h", "every <n>m" or '
        '"off"',
    ),
    "config.digest_keys": (
        "[notifiers.digest] 中的键不认识：{unknown}。",
        "[notifiers.digest] unknown key(s) {unknown}",
    ),
    "config.daily_digest": (
        "[notifiers] daily_digest = {value!r} 只能是 {scopes} 之一。",
        "[notifiers] daily_digest = {value!r} must be one of {scopes}",
    ),
    "schedule.not_text": (
        '{where}：应写成例如 "every 1m" 的文字，不能是 {text!r}。',
        '{where}: expected text like "every 1m", not {text!r}',
    ),
    "schedule.too_short": (
        "{where}：{text!r} 短于一秒。",
        "{where}: {text!r} is shorter than a second",
    ),
    "schedule.time_of_day": (
        "{where}：{text!r}：不是一天中的时刻。",
        "{where}: {text!r}: not a time of day",
    ),
    "schedule.cron": ("{where}：{text!r}：cron 写法有误：{reason}", "{where}: {text!r}: {reason}"),
    "schedule.unreadable": (
        '{where}：无法识别 {text!r}；请用 "every <n><s|m|h|d>"、"daily HH:MM"、'
        '"weekly <mon..sun> HH:MM"、"cron <分> <时> <日> <月> <星期>" 或 "off"。',
        '{where}: cannot read {text!r}; use "every <n><s|m|h|d>", "daily HH:MM", '
        '"weekly <mon..sun> HH:MM", "cron <minute> <hour> <day> <month> <weekday>" or "off"',
    ),
    "schedule.unknown_jobs": (
        "[scheduler.jobs]：没有这些任务 {unknown}；可用：{known}。",
        "[scheduler.jobs]: unknown job(s) {unknown}; jobs: {known}",
    ),
    "schedule.target_form": (
        "任务目标 {target!r} 应写成 'package.module:function'。",
        "job target {target!r} must look like 'package.module:function'",
    ),
    "schedule.no_function": (
        "任务目标 {target!r}：没有这个函数。",
        "job target {target!r}: no such function",
    ),
    # The scoring rules of the monthly exam ([exam] of config.toml); `key` names the place.
    "scoring.one_of": (
        "{key}：只能是 {choices} 之一，现在是 {value!r}。",
        "{key}: must be one of {choices}, got {value!r}",
    ),
    "scoring.whole": (
        "{key}：必须是不小于 0 的整数，现在是 {value!r}。",
        "{key}: must be a whole number >= 0, got {value!r}",
    ),
    "scoring.not_table": (
        "{key}：必须是一个表，现在是 {kind}。",
        "{key}: must be a table, got {kind}",
    ),
    "scoring.unknown_keys": (
        "{key}：不认识的键 {unknown}（可用：{known}）。",
        "{key}: unknown key(s) {unknown} (expected {known})",
    ),
    "scoring.number": (
        "{key}：必须是数字，现在是 {value!r}。",
        "{key}: must be a number, got {value!r}",
    ),
    "scoring.finite": (
        "{key}：必须是有限的数字，现在是 {value!r}。",
        "{key}: must be a finite number, got {value!r}",
    ),
    "scoring.weights_table": (
        "{key}：必须是 {known} 组成的表。",
        "{key}: must be a table of {known}",
    ),
    "scoring.tiers_array": ("{key}：必须是档次的数组。", "{key}: must be an array of tiers"),
    "scoring.tier_keys": (
        "{key}：必须正好有这些键：{known}；{said}",
        "{key}: needs exactly the keys {known}; {said}",
    ),
    "scoring.tier_missing": ("缺少 {keys}", "missing {keys}"),
    "scoring.tier_unknown": ("不认识 {keys}", "unknown {keys}"),
    "scoring.tier_shape": (
        "{key}：必须是一个表，或数组 [name_zh, name_en, min_score, reward]。",
        "{key}: must be a table or an array [name_zh, name_en, min_score, reward]",
    ),
    "scoring.nonempty": ("{key}：必须是非空字符串。", "{key}: must be a non-empty string"),
    "scoring.weights_unknown": (
        "{key}：没有这些权重 {unknown}（权重有 {known}）。",
        "{key}: unknown {unknown} (weights are {known})",
    ),
    "scoring.weight_negative": (
        "{key}：必须是不小于 0 的数，现在是 {value!r}。",
        "{key}: must be a number >= 0, got {value!r}",
    ),
    "scoring.exam_weight": ("{key}：必须大于 0。", "{key}: must be greater than 0"),
    "scoring.weights_sum": (
        "{key}：权重之和必须为 1，现在是 {total}。",
        "{key}: must sum to 1, they sum to {total}",
    ),
    "scoring.floor_negative": (
        "{key}：必须是不小于 0 的数，现在是 {value!r}。",
        "{key}: must be a number >= 0, got {value!r}",
    ),
    "scoring.no_tier": ("{key}：至少需要一个档次。", "{key}: at least one tier is needed"),
    "scoring.not_tier": (
        "{key}：必须是档次（Tier），现在是 {value!r}。",
        "{key}: must be a Tier, got {value!r}",
    ),
    "scoring.min_score": ("{key}：必须在 0 到 100 之间。", "{key}: must be within 0..100"),
    "scoring.reward_negative": ("{key}：必须不小于 0。", "{key}: must be >= 0"),
    "scoring.tiers_descend": (
        "{key}：min_score 必须从最好的档次起严格递减，"
        "但 tiers[{i}]（{name}，{score}）排在 {above} 之后。",
        "{key}: min_score must strictly descend from the best tier, but tiers[{i}] ({name}, "
        "{score}) follows {above}",
    ),
    "scoring.reward_order": (
        "{key}：{reward} 比更好档次的 {better} 还多。",
        "{key}: {reward} is more than the better tier's {better}",
    ),
    "scoring.floor_above": (
        "{key}：{floor} 高于最低档次的 min_score {lowest}；低于底线的网格不能拿到奖励档次。",
        "{key}: {floor} is above the lowest tier's min_score {lowest}; a grid below the floor "
        "must not reach a reward tier",
    ),
    # The workflow file ([workflow] file of config.toml); its problems are collected.
    "workflow.not_found": ("找不到工作流文件：{path}", "workflow file not found: {path}"),
    "workflow.not_toml": ("工作流文件 {path} 不是有效的 TOML：{reason}", "{path}: {reason}"),
    "workflow.problems": ("工作流文件 {source} 有误：{problems}", "{source}: {problems}"),
    "workflow.names": (
        "{where}：需要 'zh' 和 'en' 两个名称",
        "{where}: needs both 'zh' and 'en' names",
    ),
    "workflow.limit_shape": (
        '{where}：需要 {{ within = "24h", clock = "natural|working" }}',
        '{where}: needs {{ within = "24h", clock = "natural|working" }}',
    ),
    "workflow.clock": (
        "{where}：clock 只能是 'natural' 或 'working'，不能是 {clock!r}",
        "{where}: clock must be 'natural' or 'working', not {clock!r}",
    ),
    "workflow.limit": ("{where}：{reason}", "{where}: {reason}"),
    "workflow.initial": (
        "workflow.initial：'{initial}' 不是一个状态",
        "workflow.initial: '{initial}' is not a state",
    ),
    "workflow.stage": (
        "states.{name}：阶段 '{stage}' 不在 [stages] 中",
        "states.{name}: stage '{stage}' is not in [stages]",
    ),
    "workflow.unknown_state": ("{where}：没有状态 '{name}'", "{where}: unknown state '{name}'"),
    "workflow.needs_from": ("{where}：需要 'from'", "{where}: needs 'from'"),
    "workflow.who": (
        "{where}：'who' 必须列出 {roles} 中的若干项",
        "{where}: 'who' must list some of {roles}",
    ),
    "workflow.requires": (
        "{where}：'requires' 只能取自 {known}",
        "{where}: 'requires' must be among {known}",
    ),
    "workflow.no_submit": (
        "steps：工作流需要一个 'submit' 步骤",
        "steps: a workflow needs a 'submit' step",
    ),
    "workflow.action": (
        "{where}：action 只能是 {actions} 之一，不能是 {action!r}",
        "{where}: action must be one of {actions}, not {action!r}",
    ),
    "workflow.urgent": (
        "{where}.urgent 只能是 true 或 false，不能是 {urgent!r}",
        "{where}.urgent must be true or false, not {urgent!r}",
    ),
    "workflow.urgent_limits": (
        "{where}.urgent_limits：必须是 {stages} 中若干阶段的期限表",
        "{where}.urgent_limits: a table of stage limits for some of {stages}",
    ),
    "workflow.no_category": (
        "categories：工作流至少需要一个类别",
        "categories: a workflow needs at least one category",
    ),
    # A GeoJSON file of grid boundaries (`closeloop grid import-geometry`); problems collected.
    "geometry.refused": (
        "地理边界文件未导入，共 {count} 个问题：",
        "the geometry file is refused, {count} problem{s}:",
    ),
    "geometry.more": ("……另有 {n} 个问题", "... and {n} more"),
    "geometry.not_json": ("文件：不是 JSON：{reason}", "file: not JSON: {reason}"),
    "geometry.not_collection": (
        "文件：不是 GeoJSON FeatureCollection",
        "file: not a GeoJSON FeatureCollection",
    ),
    "geometry.no_features": (
        "文件：FeatureCollection 中没有要素",
        "file: the FeatureCollection has no features",
    ),
    "geometry.no_code": (
        "第 {n} 个要素：没有用 properties.code 指明网格",
        "feature {n}: no properties.code naming its grid",
    ),
    "geometry.code_twice": (
        "第 {n} 个要素 '{code}'：代码重复（第一次出现在第 {first} 个要素）",
        "feature {n} '{code}': code appears twice (first as feature {first})",
    ),
    "geometry.unknown_grid": (
        "第 {n} 个要素 '{code}'：没有这个网格代码",
        "feature {n} '{code}': unknown grid code",
    ),
    "geometry.feature": ("第 {n} 个要素 '{code}'：{problem}", "feature {n} '{code}': {problem}"),
    "geometry.not_object": ("几何对象缺失或不是对象", "the geometry is missing or not an object"),
    "geometry.type": (
        "几何类型是 {kind!r}，不是 Polygon 或 MultiPolygon",
        "the geometry is a {kind!r}, not a Polygon or MultiPolygon",
    ),
    "geometry.coordinates": (
        "坐标不能构成 {kind}：{reason}",
        "the coordinates are not a {kind}: {reason}",
    ),
    "geometry.empty": ("几何对象是空的", "the geometry is empty"),
    "geometry.longitude": (
        "有经度超出 -180..180（GeoJSON 先写经度）",
        "a longitude is outside -180..180 (GeoJSON is longitude first)",
    ),
    "geometry.latitude": (
        "有纬度超出 -90..90（GeoJSON 先写经度）",
        "a latitude is outside -90..90 (GeoJSON is longitude first)",
    ),
    "geometry.invalid": ("几何对象无效：{reason}", "the geometry is not valid: {reason}"),
    "geometry.outside_parent": (
        "网格 '{code}' 超出上级网格 '{parent}' {area:,.0f} 平方米（容差 {tolerance:g} 米）",
        "grid '{code}' pokes out of its parent '{parent}' by {area:,.0f} m² (tolerance "
        "{tolerance:g} m)",
    ),
    "geometry.overlap": (
        "网格 '{a}' 与 '{b}' 重叠 {area:,.0f} 平方米（容差 {tolerance:g} 米）",
        "grids '{a}' and '{b}' overlap by {area:,.0f} m² (tolerance {tolerance:g} m)",
    ),
    # The answer sheets of the monthly exam ([exam] sheets_file, exam.toml beside the workflow).
    "sheets.not_found": ("找不到答题卡文件：{path}", "answer-sheet file not found: {path}"),
    "sheets.not_toml": ("{name}：不是有效的 TOML：{reason}", "{name}: not valid TOML: {reason}"),
    "sheets.not_number": (
        "{where}：必须是数字，现在是 {value!r}",
        "{where}: must be a number, got {value!r}",
    ),
    "sheets.not_positive": (
        "{where}：必须是大于 0 的数字，现在是 {value!r}",
        "{where}: must be a number greater than 0, got {value!r}",
    ),
    "sheets.nonempty": (
        "{where}.{key}：必须是非空字符串",
        "{where}.{key}: must be a non-empty string",
    ),
    "sheets.unknown_tables": (
        "{where}：不认识的表 {unknown}（可用：{known}）",
        "{where}: unknown table(s) {unknown} (expected {known})",
    ),
    "sheets.not_array": (
        "{where}：{sheet} 必须是表的数组（[[{sheet}]]）",
        "{where}: {sheet} must be an array of tables ([[{sheet}]])",
    ),
    "sheets.not_table": ("{at}：必须是一个表", "{at}: must be a table"),
    "sheets.unknown_keys": ("{at}：不认识的键 {unknown}", "{at}: unknown key(s) {unknown}"),
    "sheets.bad_key": (
        "{at}.key：只能由小写字母、数字和 _ 组成（以字母开头），现在是 {key!r}",
        "{at}.key: must be lower case letters, digits and _ (starting with a letter), got {key!r}",
    ),
    "sheets.key_taken": (
        "{at}.key：{key!r} 已经是 {sheet} 卷的题目",
        "{at}.key: {key!r} is already an item of the {sheet} sheet",
    ),
    "sheets.no_max": ("{at}.max：缺少满分", "{at}.max: missing"),
    "sheets.no_items": (
        "{where}：基础卷和必答卷都没有题目",
        "{where}: the basic and required sheets have no item",
    ),
    "sheets.same_name": (
        "{where}：{sheet} 卷的题目 {a!r} 和 {b!r} 同名 {name!r}",
        "{where}: {sheet} items {a!r} and {b!r} share the name {name!r}",
    ),
    # --- imported files (closeloop.csvfile): each problem with its line, the head naming the file
    "csv.line": ("第 {line} 行：{problem}", "line {line}: {problem}"),
    "csv.file": ("文件：{problem}", "file: {problem}"),
    "csv.refused": (
        "文件未导入，共 {count} 个问题：",
        "the file is refused, {count} problem{plural}:",
    ),
    "csv.utf16_excel": (
        "这是 UTF-16 文本（Excel 的“Unicode 文本”），不是 CSV 文本；"
        "请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        'UTF-16 text (Excel\'s "Unicode text"), not a CSV text; save it from Excel as '
        '"CSV UTF-8" or "CSV (逗号分隔)"',
    ),
    "csv.utf16": (
        "这是 UTF-16 文本，不是 CSV 文本；请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        'UTF-16 text, not a CSV text; save it from Excel as "CSV UTF-8" or "CSV (逗号分隔)"',
    ),
    "csv.xlsx": (
        "这是 Excel 工作簿（.xlsx）或其他压缩文件，不是 CSV 文本；"
        "请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        "an Excel workbook (.xlsx) or another zip file, not a CSV text; save it from Excel as "
        '"CSV UTF-8" or "CSV (逗号分隔)"',
    ),
    "csv.xls": (
        "这是旧版 Excel 工作簿（.xls），不是 CSV 文本；"
        "请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        'an old Excel workbook (.xls), not a CSV text; save it from Excel as "CSV UTF-8" or '
        '"CSV (逗号分隔)"',
    ),
    "csv.binary": (
        "这是二进制数据（第 {at} 个字节是 NUL），不是 CSV 文本；"
        "请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        'binary data (a NUL byte at {at}); save it from Excel as "CSV UTF-8" or "CSV (逗号分隔)"',
    ),
    "csv.undecodable": (
        "既不是 UTF-8 也不是 GBK/GB18030 文本（第 {at} 个字节）；"
        "请在 Excel 中另存为“CSV UTF-8”或“CSV (逗号分隔)”。",
        "neither UTF-8 nor GBK/GB18030 text (byte {at}); save it from Excel as "
        '"CSV UTF-8" or "CSV (逗号分隔)"',
    ),
    "csv.malformed": (
        "CSV 格式有误（{reason}），从这一行起不再读取。",
        "malformed CSV ({reason}); reading stopped here",
    ),
    "csv.empty": (
        "文件是空的：需要一行表头和至少一行数据。",
        "the file is empty; it needs a header and at least one row",
    ),
    "csv.width": (
        "这一行有 {found} 列，表头有 {header} 列。",
        "{found} fields where the header has {header}",
    ),
    "csv.no_rows": ("表头下面没有数据行。", "the header is not followed by any row"),
    "csv.unnamed_columns": ("第 {columns} 列没有列名。", "column(s) {columns} without a name"),
    "csv.missing_columns": ("缺少列：{columns}。", "missing column(s) {columns}"),
    "csv.unknown_columns": (
        "不认识的列：{columns}（应为 {expected}）。",
        "unknown column(s) {columns} (expected {expected})",
    ),
    "csv.repeated_columns": ("列重复：{columns}。", "column(s) given twice: {columns}"),
    # --- imported files: the grid file
    "gridfile.refused": (
        "网格文件未导入，共 {count} 个问题：",
        "the grid file is refused, {count} problem{plural}:",
    ),
    "gridfile.duplicate": (
        "网格代码 {code} 重复（第一次出现在第 {first} 行）。",
        "duplicate code '{code}' (first on line {first})",
    ),
    "gridfile.empty_code": ("网格代码（code）为空。", "empty code"),
    "gridfile.bad_code": (
        "网格代码 {code} 只能用英文字母、数字和“.”“_”“-”（最多 64 个，以字母或数字开头）。",
        "code '{code}' may use only ASCII letters, digits, '.', '_' and '-' "
        "(at most 64, starting with a letter or digit)",
    ),
    "gridfile.empty_name": ("网格 {code} 没有名称。", "empty name for grid '{code}'"),
    "gridfile.bad_level": (
        "网格 {code} 的级别 {level} 有误：只能是 1、2、3、4。",
        "level '{level}' of grid '{code}' is not one of 1, 2, 3, 4",
    ),
    "gridfile.unknown_kind": (
        "网格 {code} 的类型 {kind} 不认识（可用：{known}）。",
        "unknown kind '{kind}' for grid '{code}' (known: {known})",
    ),
    "gridfile.kind_level": (
        "类型 {kind} 属于第 {kind_level} 级，网格 {code} 是第 {level} 级（可用：{allowed}）。",
        "kind '{kind}' is a level-{kind_level} kind, grid '{code}' is level {level} "
        "(allowed: {allowed})",
    ),
    "gridfile.no_leader_handle": (
        "网格 {code} 缺少负责人账号（leader_handle）。",
        "missing leader_handle for grid '{code}'",
    ),
    "gridfile.bad_handle": (
        "负责人账号 {handle} 只能用小写字母 a-z、数字和“.”“_”“-”（最多 64 个，以字母或数字开头）。",
        "leader_handle '{handle}' may use only a-z, 0-9, '.', '_' and '-' "
        "(at most 64, starting with a letter or digit)",
    ),
    "gridfile.no_leader_name": (
        "网格 {code} 缺少负责人姓名（leader_name）。",
        "missing leader_name for grid '{code}'",
    ),
    "gridfile.bad_phone": (
        "网格 {code} 的负责人电话 {phone} 有误。",
        "bad leader_phone '{phone}' for grid '{code}'",
    ),
    "gridfile.bad_email": (
        "网格 {code} 的负责人邮箱 {email} 有误。",
        "bad leader_email '{email}' for grid '{code}'",
    ),
    "gridfile.unknown_channel": (
        "网格 {code} 的通知方式 {channel} 不认识（可用：{allowed}）。",
        "unknown channel '{channel}' for grid '{code}' (allowed: {allowed})",
    ),
    "gridfile.bad_webhook": (
        "网格 {code} 的 Webhook {webhook} 不是 http(s) 网址。",
        "webhook '{webhook}' of grid '{code}' is not an http(s) URL",
    ),
    "gridfile.leader_differs": (
        "负责人 {handle} 在这里的{field_zh}是 {here}，第 {first} 行却是 {there}："
        "一个账号是一个人。",
        "leader '{handle}' has {field} '{here}' here but '{there}' on line {first}; "
        "a handle is one person",
    ),
    "gridfile.zone_parent": (
        "网格 {code} 是一级网格（全区），不能有上级（填了 {parent}）。",
        "grid '{code}' is level 1 (the zone) and cannot have a parent ('{parent}' given)",
    ),
    "gridfile.second_zone": (
        "第二个一级网格 {code}：全区只有一个一级网格，已有 {zone}。",
        "a second zone '{code}': there is one level-1 grid, '{zone}'",
    ),
    "gridfile.own_parent": ("网格 {code} 的上级是它自己。", "grid '{code}' is its own parent"),
    "gridfile.cycle": (
        "网格 {code} 的上级关系成环：{cycle}。",
        "grid '{code}' is in a parent cycle: {cycle}",
    ),
    "gridfile.no_parent": (
        "第 {level} 级网格 {code} 需要填写上级网格（parent_code）。",
        "level-{level} grid '{code}' needs a parent_code",
    ),
    "gridfile.unknown_parent": (
        "网格 {code} 的上级 {parent} 不存在（本文件和已有网格中都没有）。",
        "unknown parent '{parent}' for grid '{code}' (neither in this file nor stored)",
    ),
    "gridfile.parent_level": (
        "网格 {code} 是第 {level} 级，但上级 {parent} 是第 {parent_level} 级：网格比上级低一级。",
        "grid '{code}' is level {level} but its parent '{parent}' is level {parent_level}; "
        "a grid is one level below its parent",
    ),
    "gridfile.parent_kind": (
        "类型为 {kind} 的网格不能在类型为 {parent_kind} 的网格 {parent} 之下（可用：{allowed}）。",
        "a '{kind}' grid cannot be under the '{parent_kind}' grid '{parent}' (allowed: {allowed})",
    ),
    "gridfile.kind_unknown": (
        "无法推断网格 {code} 的类型，请填写 kind 列。",
        "cannot infer the kind of grid '{code}'; fill the kind column",
    ),
    "gridfile.no_webhook": (
        "网格 {code} 选了 Webhook 通知方式，但没有填 Webhook 地址。",
        "grid '{code}' has channel 'webhook' but no webhook URL",
    ),
    "gridfile.moved_level": (
        "网格 {code} 已存为第 {old} 级，这里是第 {level} 级：导入不能移动网格。",
        "grid '{code}' is stored at level {old}, here {level}: moving a grid is not an "
        "import's job",
    ),
    "gridfile.moved_parent": (
        "网格 {code} 已存在 {old_zh} 之下，这里在 {parent_zh} 之下：导入不能移动网格。",
        "grid '{code}' is stored under '{old}', here under '{parent}': moving a grid is not "
        "an import's job",
    ),
    "gridfile.kind_changed": (
        "网格 {code} 已存为类型 {old}，这里是 {kind}：导入不能更改网格类型。",
        "grid '{code}' is stored as '{old}', here '{kind}': changing a grid's kind is not an "
        "import's job",
    ),
    # --- imported files: members.csv
    "memberfile.refused": (
        "成员文件未导入，共 {count} 个问题：",
        "the members file is refused, {count} problem{plural}:",
    ),
    "memberfile.no_grid": ("网格代码（grid_code）为空。", "grid_code is empty"),
    "memberfile.unknown_grid": ("没有网格 {code}。", "unknown grid '{code}'"),
    "memberfile.bad_handle": (
        "账号 {handle!r} 只能用小写字母、数字和“.”“_”“-”。",
        "handle {handle!r} must be lower-case letters, digits, '.', '_', '-'",
    ),
    "memberfile.no_name": ("姓名（name）为空。", "name is empty"),
    "memberfile.name_long": ("姓名超过 100 个字。", "name is longer than 100 characters"),
    "memberfile.no_role": (
        "职务（role）为空（例如 第一书记、联村干部、村支书）。",
        "role is empty (e.g. 第一书记, 联村干部, 村支书)",
    ),
    "memberfile.role_long": ("职务超过 64 个字。", "role is longer than 64 characters"),
    "memberfile.duty_long": ("分工超过 200 个字。", "duty is longer than 200 characters"),
    "memberfile.bad_phone": (
        "电话 {phone!r} 不是电话号码。",
        "phone {phone!r} is not a phone number",
    ),
    "memberfile.bad_email": (
        "邮箱 {email!r} 不是邮箱地址。",
        "email {email!r} is not an e-mail address",
    ),
    "memberfile.twice": (
        "{handle} 在 {code} 中列了两次（第 {first} 行）。",
        "{handle} is listed twice for {code} (line {first})",
    ),
    "memberfile.other_name": (
        "{handle} 在这里叫 {name!r}，第 {first} 行却叫 {other!r}。",
        "{handle} is named {name!r} here and {other!r} on line {first}",
    ),
    # --- imported files: exam scores and the city's scores (closeloop.exam)
    "examfile.refused": (
        "考核文件未导入，共 {count} 个问题：",
        "exam file refused, {count} problem{plural}:",
    ),
    "examfile.month": (
        "月份 {month!r} 有误，应为 YYYY-MM（例如 2026-04）。",
        "month {month!r} is not of the form YYYY-MM (e.g. 2026-04)",
    ),
    "examfile.no_inspector": ("考核网格（inspector_grid）为空。", "inspector_grid is empty"),
    "examfile.unknown_inspector": ("没有考核网格 {grid!r}。", "unknown inspector grid {grid!r}"),
    "examfile.not_inspecting": (
        "网格 {grid!r} 不是考核网格。",
        "grid {grid!r} is not an inspecting grid",
    ),
    "examfile.no_grid": ("被考核网格（grid）为空。", "grid is empty"),
    "examfile.unknown_grid": ("没有网格 {grid!r}。", "unknown grid {grid!r}"),
    "examfile.not_under_exam": (
        "网格 {grid!r} 不在考核范围内。",
        "grid {grid!r} is not under exam",
    ),
    "examfile.scores_itself": ("网格 {grid!r} 给自己打分。", "grid {grid!r} scores itself"),
    "examfile.sheet": (
        "没有答卷 {sheet!r}（应为 basic/基础卷、required/必答卷 或 bonus/加分卷）。",
        "unknown sheet {sheet!r} (expected basic/基础卷, required/必答卷 or bonus/加分卷)",
    ),
    "examfile.unknown_sheet": ("没有答卷 {sheet!r}。", "unknown sheet {sheet!r}"),
    "examfile.no_item": ("考核项目（item）为空。", "item is empty"),
    "examfile.unknown_item": (
        "{sheet_zh}中没有项目 {item!r}（它的项目：{keys}）。",
        "unknown item {item!r} of the {sheet} sheet (its items: {keys})",
    ),
    "examfile.score_nan": ("得分 {score!r} 不是数字。", "score {score!r} is not a number"),
    "examfile.max_nan": (
        "满分 {max_score!r} 不是数字。",
        "max_score {max_score!r} is not a number",
    ),
    "examfile.max_not_positive": (
        "满分 {max_score} 必须大于 0。",
        "max_score {max_score} must be greater than 0",
    ),
    "examfile.max_not_item": (
        "满分 {max_score} 不是项目 {item!r} 的满分 {item_max}。",
        "max_score {max_score} is not the maximum {item_max} of item {item!r}",
    ),
    "examfile.score_range": (
        "得分 {score} 超出 0..{max_score} 的范围。",
        "score {score} is out of range 0..{max_score}",
    ),
    "examfile.duplicate": (
        "与第 {first} 行重复（月份、考核网格、被考核网格、答卷和项目都相同）。",
        "duplicate of line {first} (same month, inspector_grid, grid, sheet and item)",
    ),
    "examfile.max_differs": (
        "满分 {max_score} 与第 {first} 行的 {earlier} 不同（同一月份、网格、答卷和项目）。",
        "max_score {max_score} differs from {earlier} on line {first} for the same month, "
        "grid, sheet and item",
    ),
    "examfile.bonus_only": (
        "网格 {grid!r} 在 {month} 只有加分卷项目，没有基础卷或必答卷项目，因此没有考核成绩。",
        "grid {grid!r} has bonus items in {month} but no basic or required item, so it has "
        "no exam score",
    ),
    "examfile.stored": (
        "已经导入过（月份、考核网格、被考核网格、答卷和项目都相同）。",
        "already imported (same month, inspector_grid, grid, sheet and item)",
    ),
    "examfile.city_score": (
        "得分 {score!r} 不是 0..100 之间的数字。",
        "score {score!r} is not a number within 0..100",
    ),
    "examfile.city_duplicate": (
        "与第 {first} 行重复（月份和网格都相同）。",
        "duplicate of line {first} (same month and grid)",
    ),
    # --- an inspector's grading form on the phone (closeloop.exam): a problem per item
    "examform.unknown_item": (
        "{key}：不是答卷中的项目。",
        "{key}: not an item of the answer sheets",
    ),
    "examform.no_points": ("{name}：没有填写得分。", "{name}: no points entered"),
    "examform.nan": ("{name}：{text!r} 不是数字。", "{name}: {text!r} is not a number"),
    "examform.range": (
        "{name}：{text} 超出 0..{max_points} 的范围。",
        "{name}: {text} is out of range 0..{max_points}",
    ),
    "examform.no_note": ("{name}：扣分需要填写说明。", "{name}: a deduction needs a note"),
    # --- imported files: a campaign day's findings (closeloop.campaigns)
    "findings.lat_nan": ("纬度 {raw!r} 不是数字。", "lat {raw!r} is not a number"),
    "findings.lon_nan": ("经度 {raw!r} 不是数字。", "lon {raw!r} is not a number"),
    "findings.no_title": ("标题（title）为空。", "title is empty"),
    "findings.no_grid": ("网格（grid）为空。", "grid is empty"),
    "findings.unknown_grid": ("没有网格 {code}。", "unknown grid '{code}'"),
    "findings.category": (
        "问题类型 {category!r} 不认识；可用：{known}。",
        "unknown category {category!r}; categories: {known}",
    ),
    "findings.by_unknown": ("--by：没有账号 {handle}。", "--by: unknown person '{handle}'"),
    # --- a meeting's and a patrol's input, each problem named (within meeting/patrol.problems)
    "meeting.unknown_kind": (
        "没有 {kind!r} 这种会议；可用：{kinds}",
        "unknown kind {kind!r}; kinds: {kinds}",
    ),
    "meeting.no_attendee": (
        "至少需要一位参会人员（--attendee）",
        "at least one --attendee is needed",
    ),
    "meeting.too_many": ("参会人员最多 {n} 位", "at most {n} attendees"),
    "meeting.attendee_twice": ("参会人员 {handles} 重复", "attendee {handles} given twice"),
    "meeting.bad_week": (
        "周 {week!r} 有误，应为 YYYY-Www（例如 2026-W14）",
        "week {week!r} is not of the form YYYY-Www (e.g. 2026-W14)",
    ),
    "meeting.at_naive": (
        "会议时间需要带时区，例如 2026-04-07T09:00:00+08:00",
        "--at needs a time zone offset, e.g. 2026-04-07T09:00:00+08:00",
    ),
    "meeting.unknown_attendee": ("没有账号 {handle}", "unknown person '{handle}'"),
    "meeting.unknown_place": ("没有网格 {code}", "unknown grid '{code}'"),
    "meeting.due_naive": (
        "期限需要带时区，例如 2026-04-14T17:30:00+08:00",
        "--due needs a time zone offset, e.g. 2026-04-14T17:30:00+08:00",
    ),
    "meeting.due_past": ("期限 {due} 不在将来", "--due {due} is not in the future"),
    "patrol.at_naive": (
        "巡查时间需要带时区，例如 2026-04-01T09:30:00+08:00",
        "the time needs a time zone offset, e.g. 2026-04-01T09:30:00+08:00",
    ),
    "patrol.at_future": (
        "{at} 还没到；巡查按发生的时间记录",
        "{at} is in the future; a patrol is recorded when it happened",
    ),
    "patrol.no_grid": ("至少需要一个网格（--grid）", "at least one --grid is needed"),
    "patrol.grid_twice": ("网格 {grids} 重复", "grid {grids} given twice"),
    "patrol.at_grid": ("{grid}：{problem}", "{grid}: {problem}"),
    "patrol.lat_lon_pair": (
        "纬度和经度要么都填，要么都不填",
        "give both latitude and longitude, or neither",
    ),
    "patrol.lat_range": ("纬度必须在 -90 到 90 之间", "latitude must be between -90 and 90"),
    "patrol.lon_range": ("经度必须在 -180 到 180 之间", "longitude must be between -180 and 180"),
    "patrol.no_ticket": ("没有问题单 {ref}", "no ticket {ref}"),
    "patrol.unknown_grid": ("没有网格 {code}", "unknown grid '{code}'"),
    "patrol.checked_in": (
        "巡查 {patrol_id} 已在 {code} 签到过",
        "patrol {patrol_id} already checked in at {code}",
    ),
    # The working calendar ([calendar] of config.toml) and the limits of a workflow ("24h").
    "calendar.clock": (
        "clock 只能是 'natural' 或 'working'，不能是 {clock!r}",
        "clock must be 'natural' or 'working', not {clock!r}",
    ),
    "calendar.limit_unit": (
        "期限单位只能是 'm'、'h' 或 'd'，不能是 {unit!r}",
        "limit unit must be 'm', 'h' or 'd', not {unit!r}",
    ),
    "calendar.limit_positive": (
        "期限必须大于 0，现在是 {value!r}",
        "a limit must be positive, got {value!r}",
    ),
    "calendar.limit_not_text": (
        "期限应写成 '2h' 或 '5d' 这样的文字，不能是 {text!r}",
        "a limit is text like '2h' or '5d', not {text!r}",
    ),
    "calendar.limit_unreadable": (
        "无法识别期限 {text!r}：应为正数加单位 m（分钟）、h（小时）或 d（天），"
        "例如 '90m'、'1.5h'、'5d'",
        "cannot read limit {text!r}: expected a positive number and a unit m (minutes), "
        "h (hours) or d (days), e.g. '90m', '1.5h', '5d'",
    ),
    "calendar.hours_form": (
        "工作时间应写成 '08:30-12:00'，不能是 {text!r}",
        "working hours must look like '08:30-12:00', not {text!r}",
    ),
    "calendar.hours_time": (
        "工作时间 {text!r}：不是一天中的时刻",
        "working hours {text!r}: not a time of day",
    ),
    "calendar.dates_list": (
        "calendar.{key} 必须是日期列表，不能是 {values!r}",
        "calendar.{key} must be a list of dates, not {values!r}",
    ),
    "calendar.date": (
        "calendar.{key}：{value!r} 不是日期，例如 2026-05-06",
        "calendar.{key}: {value!r} is not a date like 2026-05-06",
    ),
    "calendar.no_hours": (
        "日历至少需要一段工作时间",
        "a calendar needs at least one range of working hours",
    ),
    "calendar.hours_order": (
        "工作时间 {start:%H:%M}-{end:%H:%M}：开始必须早于结束",
        "working hours {start:%H:%M}-{end:%H:%M}: the start must be before the end",
    ),
    "calendar.hours_overlap": (
        "工作时间 {s1:%H:%M}-{e1:%H:%M} 与 {s2:%H:%M}-{e2:%H:%M} 重叠或顺序颠倒",
        "working hours {s1:%H:%M}-{e1:%H:%M} and {s2:%H:%M}-{e2:%H:%M} overlap or are out of order",
    ),
    "calendar.weekdays": (
        "weekdays 必须是 1-7 的 ISO 编号（周一为 1），现在是 {weekdays}",
        "weekdays must be ISO numbers 1-7 (Monday=1), got {weekdays}",
    ),
    "calendar.both": (
        "这些日期同时被列为假日和工作日：{listed}",
        "dates listed both as holiday and as workday: {listed}",
    ),
    "calendar.unknown_keys": (
        "[calendar] 中的设置不认识：{unknown}；可用：{known}",
        "unknown calendar setting(s) {unknown}; known: {known}",
    ),
    "calendar.timezone": (
        "calendar.timezone：没有时区 {tz!r}",
        "calendar.timezone: unknown time zone {tz!r}",
    ),
    "calendar.hours_list": (
        "calendar.hours 必须是列表，例如 {example}",
        "calendar.hours must be a list like {example}",
    ),
    "calendar.weekdays_list": (
        "calendar.weekdays 必须是 1-7 的 ISO 星期编号列表",
        "calendar.weekdays must be a list of ISO weekday numbers 1-7",
    ),
    "calendar.weekdays_numbers": (
        "calendar.weekdays 必须是 1-7 的数字，现在是 {weekdays!r}",
        "calendar.weekdays must be numbers 1-7, got {weekdays!r}",
    ),
    "calendar.builtin": (
        "calendar.builtin 只能是 true 或 false，不能是 {builtin!r}",
        "calendar.builtin must be true or false, not {builtin!r}",
    ),
    "config.reminders": (
        "[escalation] reminders：每个提醒点都必须是 0 到 1 之间的小数",
        "[escalation] reminders: each point is a fraction between 0 and 1",
    ),
    # --- a ticket's, a campaign's and a rectification's input (within their .problems)
    "ticket.bad_source": (
        "没有 {source!r} 这种来源；可用：{known}",
        "unknown source {source!r}; sources: {known}",
    ),
    "ticket.bad_link": (
        "没有 {kind!r} 这种关联；可用：{known}",
        "unknown link {kind!r}; links: {known}",
    ),
    "ticket.due_naive": ("期限需要带时区", "the deadline needs a time zone offset"),
    "ticket.no_title": ("需要填写标题（看得见的文字）", "a title is needed (one a person can see)"),
    "ticket.title_long": ("标题不能超过 200 个字", "the title is longer than 200 characters"),
    "ticket.description_long": (
        "说明不能超过 5000 个字",
        "the description is longer than 5000 characters",
    ),
    "ticket.lat_lon_pair": (
        "纬度和经度要么都填，要么都不填",
        "give both --lat and --lon, or neither",
    ),
    "ticket.lat_range": ("纬度必须在 -90 到 90 之间", "--lat must be between -90 and 90"),
    "ticket.lon_range": ("经度必须在 -180 到 180 之间", "--lon must be between -180 and 180"),
    "campaign.bad_month": (
        "月份 {month!r} 有误，应为 YYYY-MM（例如 2026-04）",
        "month {month!r} is not of the form YYYY-MM (e.g. 2026-04)",
    ),
    "campaign.bad_date": (
        "日期 {day!r} 有误，应为 YYYY-MM-DD（例如 2026-04-22）",
        "date {day!r} is not of the form YYYY-MM-DD (e.g. 2026-04-22)",
    ),
    "campaign.date_not_in_month": (
        "日期 {day} 不在 {month} 月内",
        "--date {day} is not in --month {month}",
    ),
    "campaign.no_date": ("需要日期（或月份）", "a --date (or --month) is needed"),
    "campaign.unknown_action": (
        "没有 {action!r} 这种行动；可用：{known}",
        "unknown action {action!r}; actions: {known}",
    ),
    "campaign.no_action": (
        "至少需要一项行动（{known}）",
        "at least one --action is needed ({known})",
    ),
    "campaign.no_theme": ("需要填写主题", "a theme is needed"),
    "campaign.theme_long": ("主题不能超过 {n} 个字", "the theme is longer than {n} characters"),
    "campaign.focus_long": ("重点内容不能超过 {n} 个字", "the focus is longer than {n} characters"),
    "campaign.no_grid": ("至少需要一个网格（--grid）", "at least one --grid is needed"),
    "campaign.weeks_many": ("一个月最多 {n} 个周主题", "a month has at most {n} weekly themes"),
    "campaign.bad_team": (
        "小组 {spec!r} 有误，应为 名称:账号,账号（例如 一组:zone.lead,x）",
        "--team {spec!r} is not NAME:HANDLE,HANDLE (e.g. 一组:zone.lead,x)",
    ),
    "campaign.team_twice": ("小组 {name!r} 重复", "team {name!r} is given twice"),
    "campaign.unknown_grid": ("没有网格 {code}", "unknown grid '{code}'"),
    "campaign.zone_grid": (
        "网格 {code} 是全区，不是村",
        "grid {code} is the whole zone, not a village",
    ),
    "campaign.unknown_member": (
        "小组中没有账号 {handle}",
        "unknown person '{handle}' in a team",
    ),
    "rectify.item_empty": ("第 {n} 项：为空", "item {n}: empty"),
    "rectify.item_long": ("第 {n} 项：超过 {most} 个字", "item {n}: longer than {most} characters"),
    "rectify.items_none": ("至少需要一项（--item）", "at least one --item is needed"),
    # --- replaying historical requests
    "replay.not_table": ("[{key}] 必须是一个表。", "[{key}] must be a table"),
    "replay.limit": (
        '{where} 必须是期限（如 "24h"）或期限表。',
        '{where} must be a limit like "24h" or a table of them',
    ),
    "replay.bad_value": ("{where}.{key}：{reason}", "{where}.{key}: {reason}"),
    "replay.scenario_missing": ("找不到场景文件：{path}", "scenario file not found: {path}"),
    "replay.scenario_unreadable": ("{path}：{reason}", "{path}: {reason}"),
    "replay.column_keys": (
        "[columns] 中的键不认识：{unknown}；可用：{known}",
        "[columns]: unknown key(s) {unknown}; known: {known}",
    ),
    "replay.columns_needed": ("[columns] 需要 {missing}", "[columns] needs {missing}"),
    "replay.time_format": (
        "[format] time 必须是 strptime 格式或其列表。",
        "[format] time must be a strptime format or a list of them",
    ),
    "replay.timezone": (
        "[format] timezone：没有时区 {tz!r}",
        "[format] timezone: unknown time zone {tz!r}",
    ),
    "replay.calendar": (
        "[policy] calendar 只能是 'natural' 或 'working'，不能是 {clock!r}。",
        "[policy] calendar must be 'natural' or 'working', not {clock!r}",
    ),
    "replay.sweep_every": ("[policy] sweep_every：{reason}", "[policy] sweep_every: {reason}"),
    "replay.grids_default": (
        '没有 [columns] grid 时，[grids] 需要 "*" = "<网格代码>"。',
        'without [columns] grid, [grids] needs "*" = "<grid code>"',
    ),
    "replay.calendar_table": ("[calendar] 必须是一个表。", "[calendar] must be a table"),
    "replay.policy_category": (
        "[policy] {name}：没有类别 {unknown}；可用：{known}",
        "[policy] {name}: unknown category {unknown}; known: {known}",
    ),
    "replay.category": (
        "[categories] {source!r} = {category!r}：没有这个类别",
        "[categories] {source!r} = {category!r}: unknown category",
    ),
    "replay.no_column": (
        "[columns] {key} = {name!r}：{file} 中没有这一列",
        "[columns] {key} = {name!r}: no such column in {file}",
    ),
    "replay.nothing": (
        "文件中没有可以回放的行：{problems}",
        "no row of the file can be replayed: {problems}",
    ),
    "replay.no_rows": ("文件只有表头，没有数据行。", "the file is empty"),
    # A row the replay skips (its line is said beside it; a row of the wrong width is csv.width).
    # The English is what the summary always said, but for a blank created time (once "time ''
    # matches none of ...").
    "replay.no_created": ("{column} 列为空：没有创建时间。", "{column} is empty: no created time"),
    "replay.bad_time": (
        "时间 {text!r} 不符合任何一种格式 {formats}。",
        "time {text!r} matches none of {formats}",
    ),
    "replay.closed_before": (
        "办结时间 {closed} 早于创建时间 {created}。",
        "closed {closed} before created {created}",
    ),
    "replay.no_category": (
        '类别 {category!r} 不在 [categories] 中，也没有 "*" 兜底。',
        "category {category!r} is not in [categories] and there is no *",
    ),
    "replay.no_grid": (
        '网格值 {grid!r} 不在 [grids] 中，也没有 "*" 兜底。',
        "grid value {grid!r} is not in [grids] and there is no *",
    ),
    "replay.db_not_empty": (
        "回放数据库里已经有问题单；请给一个空数据库。",
        "the replay database already holds tickets; give an empty one",
    ),
    "replay.line": ("第 {line} 行：{reason}", "line {line}: {reason}"),
    "replay.no_leader": (
        "从网格 {grid} 到全区都没有负责人。",
        "no leader from grid {grid} up to the zone",
    ),
    "replay.no_supervisor": (
        "全区一级没有人可以核查：配置中没有督查人员。",
        "nobody can verify at the zone level: config has no supervisor",
    ),
}


def placeholders(template: str) -> set[str]:
    """The names a template fills in."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def text(
    code: str,
    params: Mapping[str, Any],
    locale: str = "en",
    words: Callable[[str], str] | None = None,
) -> str:
    """The error `code` with its `params` in `locale` (English for a locale we lack)."""
    if locale != "zh_CN":
        return english(code, params)
    values = dict(params)
    if words is not None:
        values.update({k: words(values[k]) for k in WORD_PARAMS if isinstance(values.get(k), str)})
    fields = values.get("fields")
    if isinstance(fields, tuple):
        values["fields"] = "、".join(FIELD_WORDS.get(f, (f, f))[0] for f in fields)
    return CATALOGUE[code][0].format(**_said_within(values, locale, words))


def english(code: str, params: Mapping[str, Any]) -> str:
    values = dict(params)
    fields = values.get("fields")
    if isinstance(fields, tuple):
        values["fields"] = ", ".join(fields)
    return CATALOGUE[code][1].format(**_said_within(values, "en", None))


def _said_within(
    values: dict[str, Any], locale: str, words: Callable[[str], str] | None
) -> dict[str, Any]:
    """Errors passed as parameters (the reason within a reason, the problems of a file), each
    in the same language: one, or a list of them joined as one sentence."""
    for key, value in values.items():
        if isinstance(value, CodedError):
            values[key] = value.text(locale, words)
        elif isinstance(value, list) and value and all(isinstance(v, CodedError) for v in value):
            joint = "；" if locale == "zh_CN" else "; "
            values[key] = joint.join(v.text(locale, words).rstrip("。") for v in value)
    return values


class CodedError(Exception):
    """An error with a code of the catalogue and the parameters its templates name; `str()`
    is the English text."""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(english(code, params))

    def text(self, locale: str, words: Callable[[str], str] | None = None) -> str:
        return text(self.code, self.params, locale, words)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles its args (the English text), which is not a code: an error sent
        # to another process (a worker pool) is remade from its code, parameters and state.
        return (_remake, (type(self), self.__dict__))


def _remake(cls: type[CodedError], state: dict[str, Any]) -> CodedError:
    error = cls.__new__(cls)
    Exception.__init__(error, english(state["code"], state["params"]))
    error.__dict__.update(state)
    return error
