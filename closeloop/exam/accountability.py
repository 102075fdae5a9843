"""Who is told about an accountability case (问责) and what the notice carries (pure).

The notice's payload is the case as it stood when the notice was queued: the board's assessed
score, the floor the board was published with and the basis it was decided on, so a notice sent
late, or read after the settings changed, says what the board said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

KIND = "accountability"


def recipients(
    owner: str, leaders: Iterable[Mapping[str, Any]], *, skip: str | None = None
) -> list[tuple[str, str]]:
    """(handle, role) of everyone told, each once: the owner first, then the grid's leaders as
    stored in the case; ``skip`` is the person who acted (they need no notice of their own act)."""
    out: dict[str, str] = {owner: "owner"}
    for leader in leaders:
        handle = leader.get("handle")
        if isinstance(handle, str) and handle:
            out.setdefault(handle, "leader")
    return [(h, role) for h, role in out.items() if h != skip]


def notice_key(case_id: int, event: str, handle: str) -> str:
    """The cause of one notice: the case, what happened to it, and whom it tells."""
    return f"{KIND}:{case_id}:{event}:{handle}"


def payload(
    *,
    event: str,
    case_id: int,
    grid: str,
    grid_name: str,
    month: str,
    due_on: str,
    owner_name: str,
    basis: str | None = None,
    score: str | None = None,
    floor: str | None = None,
    outcome: str | None = None,
) -> dict[str, Any]:
    """What a notice about the case shows; the role is added per recipient."""
    body: dict[str, Any] = {
        "event": event,
        "case_id": case_id,
        "grid": grid,
        "grid_name": grid_name,
        "month": month,
        "due_on": due_on,
        "owner_name": owner_name,
    }
    if event == "opened":
        body.update(basis=basis, score=score, floor=floor)
    else:
        body["outcome"] = outcome
    return body
