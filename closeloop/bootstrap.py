"""The composition root: build the engine, workflow, calendar, deadlines and the step table once,
from Settings."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from closeloop import steps as steps_mod
from closeloop.app import App, Clock, StepTable, system_now
from closeloop.calendar import WorkCalendar
from closeloop.config import Settings, load_settings
from closeloop.db import make_engine
from closeloop.deadlines import Deadlines
from closeloop.models import metadata
from closeloop.workflow import load_workflow


def bootstrap(
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
    database_url: str | None = None,
    engine: Engine | None = None,
    steps: StepTable | None = None,
    clock: Clock | None = None,
) -> App:
    settings = settings or load_settings(config_path, database_url)
    workflow = load_workflow(settings.workflow_file)
    calendar = WorkCalendar.from_config(settings.section("calendar"))
    deadlines = Deadlines.from_config(workflow, calendar, settings.section("escalation"))
    return App(
        settings=settings,
        engine=engine or make_engine(settings.database_url),
        workflow=workflow,
        calendar=calendar,
        deadlines=deadlines,
        steps=steps or steps_mod.TABLE,
        clock=clock or system_now,
    )


def create_schema(app: App) -> None:
    """Create missing tables directly (tests); `closeloop init` runs the migrations instead."""
    metadata.create_all(app.engine)
