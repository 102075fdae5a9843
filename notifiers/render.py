"""Render a notice of a given kind into subject, plain text, HTML and markdown.

Layout: one template per kind and locale, ``templates/<locale>/<kind>.j2``, holding four
blocks: ``subject``, ``text``, ``html`` and ``markdown``. Shared pieces live in
``templates/<locale>/_macros.j2`` and are imported inside each block (a block rendered on its
own does not see top-level imports).

Each block is rendered by its own Jinja environment: the ``html`` block with autoescaping on,
the others with it off, so a title like ``<b>`` is escaped in the HTML part and left as typed
in the text and markdown parts, without template authors switching escaping by hand.

A zone overrides any template by putting a file with the same name under
``<override_dir>/<locale>/``; that folder is searched first, file by file, so overriding
``_macros.j2`` alone changes every kind.

Filters: ``local`` (aware datetime → "2026-04-02 17:30" in the zone; optional strftime
format), ``duration`` (timedelta → "3小时20分钟" / "3 h 20 min"), ``md`` (text people typed
made inert in the Markdown part: no link, image, HTML or formatting can come from it; every
Markdown block applies it to every value that is not the system's own, and shared macros
take it as their ``e`` argument, ``plain`` elsewhere). Tests on ticket views:
``overdue(now)`` (``due_at`` has passed) and ``due_before(moment)`` (``due_at`` at or before it);
both are false for a ticket without a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
)

from notifiers.message import KINDS

BUILTIN_DIR = Path(__file__).parent / "templates"
PARTS = ("subject", "text", "html", "markdown")

_UNITS = {
    "zh_CN": ("天", "小时", "分钟", "", "不到1分钟"),
    "en": ("d", "h", "min", " ", "less than 1 min"),
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    markdown: str


class RenderError(ValueError):
    """A template failed: a missing context key, a missing block, a syntax error."""


def format_duration(value: timedelta, locale: str) -> str:
    """Two largest units, floored to the minute: 2天3小时, 3小时20分钟 / 2 d 3 h, 3 h 20 min.

    The sign is dropped: the template says whether the time is left or overdue.
    """
    if not isinstance(value, timedelta):
        raise TypeError(f"duration expects a timedelta, got {type(value).__name__}")
    day_u, hour_u, min_u, sep, under_a_minute = _UNITS[locale]
    minutes_total = int(abs(value).total_seconds() // 60)
    if minutes_total == 0:
        return under_a_minute
    days, rest = divmod(minutes_total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        pairs = [(days, day_u), (hours, hour_u)]
    elif hours:
        pairs = [(hours, hour_u), (minutes, min_u)]
    else:
        pairs = [(minutes, min_u)]
    words = [f"{n}{sep}{u}" for n, u in pairs if n]
    return " ".join(words) if sep else "".join(words)


# Characters that make links, images and HTML in Markdown, replaced by their full-width forms:
# inert in every Markdown dialect (DingTalk, WeCom and Feishu differ, none reads these).
_MD_WIDE = str.maketrans(
    {"[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞", "@": "＠"}
)
# Formatting characters, escaped with a backslash (CommonMark).
_MD_FORMATTING = re.compile(r"([\\`*_~|])")
# What chat clients turn into links on their own: a scheme's "://" and "www.".
_MD_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])://|\bwww\.")


def md_escape(value: Any) -> str:
    """Text shown as typed in a Markdown notice, never as a link, image, HTML or formatting.

    Newlines become spaces (a line of its own could start a heading or a quote), link and HTML
    brackets become full-width, formatting characters are escaped, and a bare address loses
    what makes a client link it (``http://`` → ``http：//``, ``www.`` → ``www．``).
    """
    if value is None:
        return ""
    text = " ".join(str(value).split("\n")).replace("\r", " ")
    text = _MD_AUTOLINK.sub(
        lambda m: "：//" if m.group(0) == "://" else m.group(0)[:3] + "．", text
    )
    text = text.translate(_MD_WIDE)
    return _MD_FORMATTING.sub(r"\\\1", text)


def _defang(match: re.Match[str]) -> str:
    found = match.group(0)
    return "：//" if found == "://" else found[:3] + "．"


def _plain(value: Any) -> Any:
    return value


def _is_overdue(ticket: Mapping[str, Any], now: datetime) -> bool:
    due = ticket["due_at"]
    return due is not None and due < now


def _is_due_before(ticket: Mapping[str, Any], moment: datetime) -> bool:
    due = ticket["due_at"]
    return due is not None and due <= moment


def _refuse_naive(value: Any, path: str) -> None:
    """Fail early, naming the key, rather than deep in a template comparing datetimes."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"context {path} is a naive datetime; notices need aware ones")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_naive(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _refuse_naive(item, f"{path}[{i}]")


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines that conditionals leave behind."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


class Renderer:
    def __init__(self, timezone: str = "Asia/Shanghai", override_dir: Path | None = None):
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        if override_dir is not None:
            override_dir = Path(override_dir)
            if not override_dir.is_dir():
                raise ValueError(f"template override folder {override_dir} does not exist")
        self.override_dir = override_dir
        self.kinds: tuple[str, ...] = KINDS
        self.locales: tuple[str, ...] = tuple(
            sorted(p.name for p in BUILTIN_DIR.iterdir() if p.is_dir())
        )
        self._envs = {
            (locale, html): self._environment(locale, html)
            for locale in self.locales
            for html in (False, True)
        }

    def _environment(self, locale: str, html: bool) -> Environment:
        folders = [BUILTIN_DIR / locale]
        if self.override_dir is not None:
            folders.insert(0, self.override_dir / locale)
        env = Environment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
            undefined=StrictUndefined,
            autoescape=html,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["local"] = self.local
        env.filters["duration"] = lambda value: format_duration(value, locale)
        env.filters["md"] = md_escape
        env.globals["md"] = md_escape
        env.globals["plain"] = _plain
        env.tests["overdue"] = _is_overdue
        env.tests["due_before"] = _is_due_before
        return env

    def local(self, value: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """An aware datetime shown in the zone's time."""
        if not isinstance(value, datetime):
            raise TypeError(f"local expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"local expects an aware datetime, got naive {value.isoformat()}")
        return value.astimezone(self.tz).strftime(fmt)

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> Rendered:
        if kind not in self.kinds:
            raise ValueError(f"unknown notice kind {kind!r}; known: {', '.join(self.kinds)}")
        if locale not in self.locales:
            raise ValueError(f"unknown locale {locale!r}; known: {', '.join(self.locales)}")
        _refuse_naive(context, "context")
        name = f"{kind}.j2"
        parts: dict[str, str] = {}
        for part in PARTS:
            env = self._envs[(locale, part == "html")]
            where = f"{locale}/{name} [{part}]"
            try:
                template = env.get_template(name)
                block = template.blocks.get(part)
                if block is None:
                    raise RenderError(f"{where}: the template has no block {part!r}")
                out = "".join(block(template.new_context(dict(context))))
            except TemplateNotFound as exc:
                raise RenderError(f"{where}: template {exc.name!r} not found") from exc
            except TemplateError as exc:
                raise RenderError(f"{where}: {exc}") from exc
            parts[part] = " ".join(out.split()) if part == "subject" else _tidy(out)
        if not parts["subject"]:
            raise RenderError(f"{locale}/{name}: the subject rendered empty")
        return Rendered(**parts)
