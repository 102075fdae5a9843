"""The composition root: build the engine, workflow, calendar and deadlines once, from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from closeloop.calendar import WorkCalendar
from closeloop.config import Settings, load_settings
from closeloop.db import make_engine
from closeloop.deadlines import Deadlines
from closeloop.models import metadata
from closeloop.workflow import Workflow, load_workflow


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: Engine
    workflow: Workflow
    calendar: WorkCalendar
    deadlines: Deadlines

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.timezone


def bootstrap(
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
    database_url: str | None = None,
    engine: Engine | None = None,
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
    )


def create_schema(app: App) -> None:
    """Create missing tables directly (tests); `closeloop init` runs the migrations instead."""
    metadata.create_all(app.engine)
