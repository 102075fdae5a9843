"""The declared step table matches the workflow: every step but submit has an effect, and the
table names no step the workflow lacks."""

from __future__ import annotations

from pathlib import Path

from closeloop import extensions, loop
from closeloop.steps import TABLE
from closeloop.workflow import load_workflow

ROOT = Path(__file__).resolve().parents[2]


def test_every_step_of_the_workflow_has_an_effect_and_no_other() -> None:
    workflow = load_workflow(ROOT / "workflows" / "environmental.toml")
    assert set(TABLE.effects) == set(workflow.steps) - {"submit"}


def test_the_table_names_the_loop_and_the_deadline_steps() -> None:
    assert TABLE.effects["fix"] is loop.fix
    assert TABLE.effects["defer"] is extensions.defer
    assert TABLE.after_step == (extensions.stage_left,)
