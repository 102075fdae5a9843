"""Issue 10, item 4: text people typed never becomes a link, an image or HTML in the Markdown
part of a notice (what DingTalk, WeCom and Feishu robots show).

Every template of every locale is rendered with every text value of its context replaced by a
hostile one; the Markdown is parsed (CommonMark, markdown-it-py) and every link must be one of
the system's own URLs, with no image, no HTML and no bare address a chat client would link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from markdown_it import MarkdownIt

from notifiers.message import KINDS
from notifiers.render import Renderer, md_escape
from tests.test_notifier_templates import LOCALES, sample_context

HOSTILE = (
    "请立即登录 [督办系统](http://evil.example/login) ![](http://evil.example/beacon.png) "
    "<img src=http://evil.example/i.png> <http://evil.example/a> www.evil.example "
    "a@evil.example **粗** `码` ~~删~~ |表|\n# 标题\n> 引用\n[x]: http://evil.example/ref [x]"
)


def hostile(value: Any, key: str = "") -> Any:
    """`value` with every text replaced by HOSTILE, except the system's own URLs."""
    if isinstance(value, Mapping):
        return {k: hostile(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hostile(v, key) for v in value]
    if isinstance(value, str) and not key.endswith("url") and key not in ("locale", "handle"):
        return HOSTILE
    return value


def urls(value: Any, key: str = "") -> set[str]:
    if isinstance(value, Mapping):
        return set().union(*(urls(v, k) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return set().union(*(urls(v, key) for v in value))
    return {value} if isinstance(value, str) and key.endswith("url") else set()


def tokens(markdown: str) -> list[Any]:
    out = []
    for token in MarkdownIt("commonmark").parse(markdown):
        out.append(token)
        out.extend(token.children or ())
    return out


def test_the_filter_itself() -> None:
    made = md_escape(HOSTILE)
    assert "\n" not in made
    assert not set("[]()<>") & set(made)
    assert "http://" not in made and "www." not in made
    assert "\\*\\*粗\\*\\*" in made
    assert md_escape(None) == ""


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_link_or_image_comes_from_user_text(kind: str, locale: str) -> None:
    context = hostile(sample_context(kind, locale=locale))
    markdown = Renderer().render(kind, locale, context).markdown
    allowed = urls(context)
    found = tokens(markdown)
    links = [t.attrs.get("href") for t in found if t.type == "link_open"]
    assert set(links) <= allowed, links
    assert [t for t in found if t.type == "image"] == []
    assert [t.content for t in found if t.type in ("html_inline", "html_block")] == []
    text = " ".join(t.content for t in found if t.type in ("text", "code_inline"))
    # No bare address left that a chat client would link on its own.
    assert "://evil" not in text and "www.evil" not in text and "@evil" not in text
    # What was typed is still there, readable.
    assert "督办系统" in markdown and "请立即登录" in markdown
