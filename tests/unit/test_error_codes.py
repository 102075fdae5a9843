"""Errors by code: every code of the catalogue is said in both languages, and every place that
makes an error (found with `ast` in closeloop/) names a code of the catalogue and passes each
parameter its templates fill in. No database, no App."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import closeloop
from closeloop import errors
from closeloop.errors import CATALOGUE, CodedError, placeholders

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "closeloop"

# Where the code is among the positional arguments, for the classes whose constructor takes
# something before it (the retry of a 429, Open311's status).
CODE_POSITION = {"TooManyAttempts": 0, "OverQuota": 0, "Open311Error": 1}
# Classes whose constructor chooses the code itself from what it is given.
FIXED_CODE = {
    "StepNotAllowed",
    "ExamRefused",
    "GeometryFileError",
    "CsvFileError",
    "GridFileError",
    "MemberFileError",
    "ExamFileError",
}


def coded_classes() -> dict[str, type[CodedError]]:
    for info in pkgutil.walk_packages(closeloop.__path__, "closeloop."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: dict[str, type[CodedError]] = {"CodedError": CodedError}
    todo: list[type[CodedError]] = [CodedError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


@dataclass(frozen=True)
class Site:
    where: str
    cls: str
    call: ast.Call


# Functions that take a code of the catalogue and its parameters, as the classes do: the command
# line's `fail` (which passes on an error already made as it is).
CODED_FUNCTIONS = {"fail"}


def sites() -> Iterator[Site]:
    names = set(coded_classes()) | CODED_FUNCTIONS
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Inside `def fail` the code is its parameter: checked where `fail` is called.
        inside = {
            id(call)
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.name in CODED_FUNCTIONS
            for call in ast.walk(f)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in inside:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in names:
                yield Site(f"{path.relative_to(ROOT)}:{node.lineno}", name, node)


def _codes(node: ast.expr) -> list[str] | None:
    """The codes a code argument can be: a literal, or a choice between two; None if it is
    neither."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _codes(node.body), _codes(node.orelse)
        if body is not None and orelse is not None:
            return body + orelse
    return None


def _passed_on(call: ast.Call, code: ast.expr) -> bool:
    """`Invalid(exc.code, **exc.params)`: another error's code and parameters, passed on."""
    return (
        isinstance(code, ast.Attribute)
        and code.attr == "code"
        and len(call.keywords) == 1
        and call.keywords[0].arg is None
        and isinstance(call.keywords[0].value, ast.Attribute)
        and call.keywords[0].value.attr == "params"
    )


def test_every_code_is_said_in_both_languages() -> None:
    assert errors.LOCALES == ("zh_CN", "en")
    for code, (zh, en) in CATALOGUE.items():
        assert zh.strip() and en.strip(), code
        assert code.count(".") == 1 and code == code.lower(), code
        # Chinese for Chinese readers: a template that is only ASCII was never translated.
        assert any(ord(c) > 0x2E7F for c in zh), (code, zh)


def test_every_error_made_in_closeloop_names_a_code_and_fills_its_templates() -> None:
    checked = 0
    problems = []
    for site in sites():
        if site.cls in FIXED_CODE:
            continue
        position = CODE_POSITION.get(site.cls, 0)
        if len(site.call.args) <= position:
            problems.append(f"{site.where}: {site.cls}(...) without a code")
            continue
        code = site.call.args[position]
        if _passed_on(site.call, code):
            continue
        if site.cls in CODED_FUNCTIONS and not site.call.keywords and not _codes(code):
            continue  # `fail(exc)`: an error made (and checked) where it was raised
        codes = _codes(code)
        if codes is None:
            problems.append(f"{site.where}: the code is not a literal: {ast.unparse(code)}")
            continue
        given = {k.arg for k in site.call.keywords}
        if None in given:
            problems.append(f"{site.where}: parameters by ** hide what is passed")
            continue
        for c in codes:
            if c not in CATALOGUE:
                problems.append(f"{site.where}: {c!r} is not in the catalogue")
                continue
            zh, en = CATALOGUE[c]
            missing = (placeholders(zh) | placeholders(en)) - given
            if missing:
                problems.append(f"{site.where}: {c} needs {sorted(missing)}")
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 250  # the walk found the raise sites (about 290 today)


def problem_sites() -> Iterator[tuple[str, ast.expr, set[str | None]]]:
    """Where a problem of an imported file is made: `problems.add(line, code, **params)` and
    `Problem(line, code, {params})`, with the code argument and the parameters given."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            func = node.func
            receiver = func.value if isinstance(func, ast.Attribute) else None
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "add"
                and isinstance(receiver, ast.Name | ast.Attribute)
                and (receiver.id if isinstance(receiver, ast.Name) else receiver.attr) == "problems"
            ):
                yield where, node.args[1], {k.arg for k in node.keywords}
            elif getattr(func, "id", None) == "Problem":
                given: set[str | None] = set()
                if len(node.args) > 2:
                    params = node.args[2]
                    if isinstance(params, ast.Dict):
                        given = {
                            k.value if isinstance(k, ast.Constant) else None for k in params.keys
                        }
                    else:
                        given = {None}
                yield where, node.args[1], given


def test_every_problem_of_an_imported_file_names_a_code_and_fills_its_templates() -> None:
    from closeloop import csvfile

    checked = 0
    problems = []
    for where, code, given in problem_sites():
        codes = _codes(code)
        if codes is None:
            # decode() says what the bytes are by a code of its table: checked below
            if where.startswith("closeloop/csvfile.py") and ast.unparse(code) == "code":
                continue
            problems.append(f"{where}: the code is not a literal: {ast.unparse(code)}")
            continue
        if None in given:
            problems.append(f"{where}: parameters by ** hide what is passed")
            continue
        for c in codes:
            if c not in CATALOGUE:
                problems.append(f"{where}: {c!r} is not in the catalogue")
                continue
            zh, en = CATALOGUE[c]
            missing = (placeholders(zh) | placeholders(en)) - given
            if missing:
                problems.append(f"{where}: {c} needs {sorted(missing)}")
            checked += 1
    for _, c in csvfile._NOT_TEXT:
        assert c in CATALOGUE and not placeholders(CATALOGUE[c][0] + CATALOGUE[c][1]), c
    assert not problems, "\n".join(problems)
    assert checked > 80  # the walk found the imports' problems (about 90 today)


def test_every_code_of_the_catalogue_is_used() -> None:
    literals = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
    assert sorted(set(CATALOGUE) - literals) == []


def test_the_classes_that_choose_their_code_fill_their_templates() -> None:
    from closeloop.csvfile import CsvFileError, Problem
    from closeloop.exam.service import ExamRefused
    from closeloop.gridfile import GridFileError
    from closeloop.memberfile import MemberFileError
    from closeloop.workflow import StepNotAllowed

    width = [Problem(2, "csv.width", {"found": 1, "header": 2})]
    for error in (
        StepNotAllowed("verify", "assigned", ("fixed",)),
        StepNotAllowed("explode", "assigned", ()),
        ExamRefused([Problem(2, "examfile.unknown_grid", {"grid": "X"})]),
        CsvFileError(width),
        GridFileError(width),
        MemberFileError(width),
    ):
        for locale in errors.LOCALES:
            assert error.text(locale)
    assert str(StepNotAllowed("verify", "assigned", ("fixed",))) == (
        "cannot verify a ticket that is assigned; 'verify' may run only from: fixed"
    )
    assert str(StepNotAllowed("explode", "assigned", ())) == (
        "cannot explode a ticket that is assigned; there is no step 'explode'"
    )


def test_english_is_the_message_and_chinese_names_steps_by_their_labels() -> None:
    from closeloop.tickets import Invalid, NotPermitted

    error = NotPermitted("step.not_permitted", handle="g3", step="verify", ref="EP-1", who="x")
    assert str(error) == "g3 may not verify EP-1: only x may"
    assert error.code == "step.not_permitted"
    assert error.params == {"handle": "g3", "step": "verify", "ref": "EP-1", "who": "x"}
    labels = {"verify": "核查通过"}
    assert error.text("zh_CN", words=labels.__getitem__) == "您无权对这个问题执行“核查通过”。"
    # A language we lack reads English; English never asks for labels.
    assert error.text("fr", words=labels.__getitem__) == str(error)
    needs = Invalid("step.needs", step="defer", fields=("--reason", "--review-on"))
    assert str(needs) == "'defer' needs --reason, --review-on"
    assert needs.text("zh_CN") == "请填写：理由、复查日期。"


def test_an_error_survives_pickling_with_its_code() -> None:
    import pickle

    from closeloop.web.auth import TooManyAttempts

    error = TooManyAttempts("auth.login_limited", 120, handle="x", minutes=2)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is TooManyAttempts and again.retry_after == 120
    assert (again.code, again.params, str(again)) == (error.code, error.params, str(error))


def test_an_unknown_code_is_refused_where_it_is_made() -> None:
    with pytest.raises(KeyError):
        CodedError("no.such_code")


def test_a_config_error_within_a_section_is_said_whole_in_either_language() -> None:
    """A problem of the scoring rules, named by its key within [exam], in both languages (the
    Chinese says the inner problem in Chinese too)."""
    from dataclasses import replace

    from closeloop.config import ConfigError, load_settings
    from closeloop.exam.settings import ExamSettings

    settings = load_settings(ROOT / "config.toml", "sqlite://")
    exam = {**settings.raw["exam"], "weights": {"exam": 0.8}}
    with pytest.raises(ConfigError) as info:
        ExamSettings.from_settings(replace(settings, raw={**settings.raw, "exam": exam}))
    assert str(info.value) == "[exam] weights: must sum to 1, they sum to 0.8"
    assert info.value.text("zh_CN") == (
        "[exam] 评分设置有误：weights：权重之和必须为 1，现在是 0.8。"
    )
    tiers = {**settings.raw["exam"], "tiers": [{"name_zh": "一档", "min_score": 90, "x": 1}]}
    with pytest.raises(ConfigError) as info:
        ExamSettings.from_settings(replace(settings, raw={**settings.raw, "exam": tiers}))
    assert str(info.value) == (
        "[exam] tiers[0]: needs exactly the keys name_zh, name_en, min_score, reward; "
        "missing name_en, reward; unknown x"
    )
    assert info.value.text("zh_CN").endswith("缺少 name_en, reward；不认识 x")


def test_a_workflow_file_lists_every_problem_by_its_code_in_either_language() -> None:
    from closeloop.workflow import WorkflowError, parse_workflow

    with pytest.raises(WorkflowError) as info:
        parse_workflow({"states": {"a": {"zh": "甲"}}}, source="wf.toml")
    assert str(info.value) == (
        "wf.toml: states.a: needs both 'zh' and 'en' names; workflow.initial: 'reported' is "
        "not a state; steps: a workflow needs a 'submit' step; categories: a workflow needs "
        "at least one category"
    )
    assert info.value.text("zh_CN") == (
        "工作流文件 wf.toml 有误：states.a：需要 'zh' 和 'en' 两个名称；workflow.initial："
        "'reported' 不是一个状态；steps：工作流需要一个 'submit' 步骤；categories："
        "工作流至少需要一个类别"
    )


def test_a_refused_geometry_file_counts_and_lists_its_problems_in_either_language() -> None:
    import pickle

    from closeloop.geo.rules import GeometryFileError, check_file

    with pytest.raises(GeometryFileError) as info:
        check_file('{"type": "FeatureCollection", "features": [{}, {}]}', {}, {})
    error = info.value
    assert str(error) == (
        "the geometry file is refused, 2 problems:\n"
        "  feature 1: no properties.code naming its grid\n"
        "  feature 2: no properties.code naming its grid"
    )
    assert error.text("zh_CN").splitlines() == [
        "地理边界文件未导入，共 2 个问题：",
        "  第 1 个要素：没有用 properties.code 指明网格",
        "  第 2 个要素：没有用 properties.code 指明网格",
    ]
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.problems, str(again)) == (error.code, error.problems, str(error))


def test_an_answer_sheet_problem_is_said_within_the_config_error(tmp_path: Path) -> None:
    from closeloop.config import ConfigError
    from closeloop.exam.boards import ScoringConfig
    from closeloop.exam.settings import ExamSettings

    path = tmp_path / "exam.toml"
    path.write_text("[[extra]]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ExamSettings(scoring=ScoringConfig(), sheets_file=path).sheets()
    assert str(info.value) == (
        "[exam] sheets_file: exam.toml: unknown table(s) extra (expected basic, required, bonus)"
    )
    assert info.value.text("zh_CN") == (
        "[exam] sheets_file 答题卡文件有误："
        "exam.toml：不认识的表 extra（可用：basic, required, bonus）"
    )


def test_a_bad_limit_or_calendar_setting_is_said_in_either_language() -> None:
    import tomllib

    from closeloop.calendar import CalendarError, WorkCalendar
    from closeloop.workflow import WorkflowError, parse_workflow

    raw = tomllib.loads((ROOT / "workflows" / "environmental.toml").read_text(encoding="utf-8"))
    raw["categories"]["road"]["fix"] = {"within": "soon", "clock": "natural"}
    with pytest.raises(WorkflowError) as info:
        parse_workflow(raw, source="wf.toml")
    assert str(info.value).startswith("wf.toml: categories.road.fix: cannot read limit 'soon': ")
    assert info.value.text("zh_CN").startswith(
        "工作流文件 wf.toml 有误：categories.road.fix：无法识别期限 'soon'："
    )
    with pytest.raises(CalendarError) as hours:
        WorkCalendar.from_config({"hours": ["13:30-17:30", "08:30-14:00"]})
    assert str(hours.value) == (
        "working hours 08:30-14:00 and 13:30-17:30 overlap or are out of order"
    )
    assert hours.value.text("zh_CN") == "工作时间 08:30-14:00 与 13:30-17:30 重叠或顺序颠倒"


def test_the_problems_of_a_form_are_said_one_by_one_in_the_readers_language() -> None:
    """A refused ticket, campaign or rectification lists coded errors: English joined by "; "
    as the command line always said it, Chinese joined by "；" with no English inside."""
    from closeloop import service
    from closeloop.campaigns.rules import check_campaign, parse_teams
    from closeloop.tickets import Invalid
    from closeloop.workflow import ACTIONS

    with pytest.raises(Invalid) as info:
        service._check_problem(service.NewProblem("G", "c", " ", lat=95.0, source="radio"))
    assert str(info.value) == (
        "unknown source 'radio'; sources: public, patrol, hotline, leader, media, meeting, "
        "campaign, inspection; a title is needed (one a person can see); give both --lat and "
        "--lon, or neither; --lat must be between -90 and 90"
    )
    assert info.value.text("zh_CN") == (
        "问题信息有误：没有 'radio' 这种来源；可用：public, patrol, hotline, leader, media, "
        "meeting, campaign, inspection；需要填写标题（看得见的文字）；"
        "纬度和经度要么都填，要么都不填；纬度必须在 -90 到 90 之间"
    )
    _, teams = parse_teams(["一组:a", "一组:b", "x"])
    refused = Invalid("campaign.problems", problems=check_campaign("", [], [], [], None) + teams)
    assert str(refused).startswith("at least one --action is needed (")
    assert refused.text("zh_CN") == (
        f"大会战信息有误：至少需要一项行动（{', '.join(ACTIONS)}）；需要填写主题；"
        "至少需要一个网格（--grid）；小组 '一组' 重复；"
        "小组 'x' 有误，应为 名称:账号,账号（例如 一组:zone.lead,x）"
    )
