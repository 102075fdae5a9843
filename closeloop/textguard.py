"""What text from outside must be before it is stored: valid Unicode, no control characters
but newline and tab, and, for a title, something a person can see.

- A lone surrogate ("\\ud800", legal in JSON, not in UTF-8) cannot be encoded: the database
  driver failed on it with a 500. Refused.
- NUL cannot be stored by PostgreSQL: refused (as before). Other C0 control characters and DEL
  are dropped; CR LF and a lone CR become LF (what browsers send from a textarea).
- A title of zero-width or other invisible characters only is as blank as an empty one.

`loads_json` parses a JSON body without the RecursionError a body of 100,000 `[` raised.
Pure functions: the web schemas, Open311 and the service layer use them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

MAX_JSON_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
_DROPPED_CONTROLS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters Unicode calls letters or symbols that still show nothing.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")


class BadText(ValueError):
    """Text that cannot be stored; the message says why (pydantic shows it as is)."""


class BadJson(ValueError):
    """A body that is not JSON we accept."""


def clean_text(value: str) -> str:
    """`value` ready to store: refused with lone surrogates or NUL, controls dropped."""
    if _SURROGATE.search(value):
        raise BadText("must be valid Unicode text (it contains a lone surrogate)")
    if "\x00" in value:
        raise BadText("must not contain NUL characters")
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _DROPPED_CONTROLS.sub("", value)


def is_visible(ch: str) -> bool:
    if ch in _BLANK_LETTERS:
        return False
    category = unicodedata.category(ch)
    # Z*: spaces and separators; C*: controls, format (zero-width), unassigned, private use;
    # M*: combining marks, which show nothing on their own.
    return category[0] not in "ZCM"


def has_visible(value: str) -> bool:
    return any(is_visible(ch) for ch in value)


def visible_text(value: str) -> str:
    """Refuse text in which a person would see nothing (blank, zero-width characters only)."""
    if not has_visible(value):
        raise BadText("must contain visible characters")
    return value


def printable(value: str) -> str:
    """`value` safe to put into a response: lone surrogates shown as \\udXXX escapes."""
    if _SURROGATE.search(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def loads_json(raw: bytes | str) -> Any:
    """Parse a JSON body; nesting deeper than MAX_JSON_DEPTH is refused, never a crash."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadJson(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJson(f"the body is not valid JSON: {exc}") from None
    _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadJson(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
