"""What the OpenAPI schema says, read directly (issue 10, item 8): the rules schemathesis needs
to tell a valid request from an invalid one (tests/test_api_schema_checks.py runs it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from closeloop.bootstrap import bootstrap
from closeloop.config import load_settings
from closeloop.web.app import create_app
from closeloop.workflow import load_workflow
from tests.conftest import CONFIG, REPO


@pytest.fixture(scope="module")
def schema(sqlite_template: Path) -> dict[str, Any]:
    """The schema of the example zone (only read: the template itself serves)."""
    app = bootstrap(load_settings(CONFIG, f"sqlite:///{sqlite_template}"))
    try:
        return create_app(app).openapi()
    finally:
        app.engine.dispose()


def body(operation: dict[str, Any], kind: str = "application/json") -> dict[str, Any]:
    found: dict[str, Any] = operation["requestBody"]["content"][kind]["schema"]
    return found


def test_each_step_is_an_operation_with_the_fields_it_requires(schema: dict[str, Any]) -> None:
    workflow = load_workflow(REPO / "workflows" / "environmental.toml")
    paths = schema["paths"]
    assert "/api/tickets/{ref}/steps/{step}" not in paths
    for name, step in workflow.steps.items():
        path = f"/api/tickets/{{ref}}/steps/{name}"
        if name == "submit":
            assert path not in paths
            continue
        operation = paths[path]["post"]
        assert operation["security"] == [{"bearer": []}, {"session": []}]
        for kind in ("application/json", "multipart/form-data"):
            target = body(operation, kind)
            assert sorted(target.get("required", [])) == sorted(step.requires), (name, kind)
            for field in step.requires:
                prop = target["properties"][field]
                assert "anyOf" not in prop and prop.get("type") == "string", (name, field)
    defer = body(paths["/api/tickets/{ref}/steps/defer"]["post"])
    reason = re.compile(defer["properties"]["reason"]["pattern"])
    assert reason.search("等待征收") and not reason.search(" \u3000\t")
    assert defer["properties"]["review_on"]["format"] == "date-time"
    reassign = body(paths["/api/tickets/{ref}/steps/reassign"]["post"])
    assert "JS-A1-V01-G03" in reassign["properties"]["to_grid"]["enum"]
    # Other steps ignore to_grid: any text is accepted there, so the schema names no grids.
    fix = body(paths["/api/tickets/{ref}/steps/fix"]["post"])
    assert "enum" not in fix["properties"]["to_grid"]["anyOf"][0]


def test_a_report_names_a_grid_or_a_point(schema: dict[str, Any]) -> None:
    submit = body(schema["paths"]["/api/tickets"]["post"])
    grid_only, point = submit["anyOf"]
    assert grid_only["required"] == ["grid"] and point["required"] == ["lat", "lon"]
    lat = submit["properties"]["lat"]["anyOf"][0]
    assert (lat["minimum"], lat["maximum"]) == (-90, 90) and "ge" not in lat
    form = body(schema["paths"]["/api/tickets"]["post"], "multipart/form-data")
    assert form["anyOf"][0] == {"required": ["grid"], "properties": {"grid": {"type": "string"}}}
    title = re.compile(submit["properties"]["title"]["pattern"])
    assert title.search("河边垃圾") and not title.search("\u200b\u200c \u3164")


def test_logins_are_declared(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "closeloop_session")
    assert "X-CSRF-Token" in schemes["session"]["description"]
    # A token cannot mint tokens: only a session may.
    assert schema["paths"]["/api/tokens"]["post"]["security"] == [{"session": []}]
    assert schema["paths"]["/api/tokens"]["get"]["security"] == [{"bearer": []}, {"session": []}]
    assert "security" not in schema["paths"]["/api/categories"]["get"]
