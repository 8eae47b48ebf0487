"""Flow versions on a real flows folder (the demo hotline's file): a bad upload is refused
with file, line and reason; a good one is stored beside the live file (which becomes
version 1); activating writes it into the folder (checked with the other flows first) and
rolling back puts the previous one back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.flows.loader import load_flows
from app.flows.versions import FlowVersionError, FlowVersions
from app.settings import PROJECT_ROOT

DEMO = PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml"
NUMBER = '["4008001234"]'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(DEMO, flows / DEMO.name)
    return flows


def versions_of(folder: Path) -> FlowVersions:
    return FlowVersions(folder, folder.parent / "versions")


def test_upload_activate_and_roll_back(folder: Path) -> None:
    store = versions_of(folder)
    original = DEMO.read_text(encoding="utf-8")
    changed = original.replace(f"hotline_numbers: {NUMBER}",
                               'hotline_numbers: ["4008001234", "4008009999"]')
    assert changed != original
    v2 = store.upload(DEMO.name, changed, "admin")
    assert (v2.flow_id, v2.number, v2.active) == ("demo_hotline", 2, False)
    # the live file became version 1, still live; the folder is untouched by an upload
    assert [(v.number, v.active, v.by) for v in store.versions("demo_hotline")] == [
        (2, False, "admin"), (1, True, "(file on disk)")]
    assert (folder / DEMO.name).read_text(encoding="utf-8") == original

    flows = store.activate("demo_hotline", 2, "admin")
    assert flows["demo_hotline"].hotline_numbers == ["4008001234", "4008009999"]
    assert (folder / DEMO.name).read_text(encoding="utf-8") == changed
    assert load_flows(folder)["demo_hotline"].hotline_numbers == ["4008001234", "4008009999"]
    assert store.active("demo_hotline") == 2

    back, flows = store.rollback("demo_hotline", "admin")
    assert back == 1 and flows["demo_hotline"].hotline_numbers == ["4008001234"]
    assert (folder / DEMO.name).read_text(encoding="utf-8") == original
    with pytest.raises(FlowVersionError, match="no earlier active version"):
        store.rollback("demo_hotline", "admin")
    history = json.loads((folder.parent / "versions" / "demo_hotline" / "history.json")
                         .read_text(encoding="utf-8"))
    assert history["active"] == [1] and history["file"] == DEMO.name


def test_a_bad_file_is_refused_with_file_line_and_reason(folder: Path) -> None:
    store = versions_of(folder)
    broken = DEMO.read_text(encoding="utf-8").replace("start: greeting", "start: nowhere")
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "start: nowhere" in text)
    with pytest.raises(FlowVersionError) as refused:
        store.upload(DEMO.name, broken, "admin")
    assert any(e.startswith(f"{DEMO.name}:{line}: ") and "nowhere" in e
               for e in refused.value.errors), refused.value.errors
    with pytest.raises(FlowVersionError, match="letters, digits"):
        store.upload("demo.txt", "id: x\n", "admin")
    assert store.versions("demo_hotline") == []  # nothing stored


def test_a_version_that_clashes_with_another_flow_is_not_activated(folder: Path) -> None:
    store = versions_of(folder)
    other = DEMO.read_text(encoding="utf-8").replace("id: demo_hotline", "id: other_line")
    v1 = store.upload("other_line.yaml", other, "admin")  # alone it checks
    assert v1.number == 1 and not v1.active
    with pytest.raises(FlowVersionError, match="does not check with the other flows") as no:
        store.activate("other_line", 1, "admin")
    assert any("4008001234" in e and e.startswith(("other_line.yaml:", "demo_hotline.yaml:"))
               for e in no.value.errors), no.value.errors
    assert not (folder / "other_line.yaml").exists()  # nothing changed
    with pytest.raises(FlowVersionError, match="has no version 5"):
        store.activate("other_line", 5, "admin")
    moved = DEMO.read_text(encoding="utf-8")
    with pytest.raises(FlowVersionError, match="lives in demo_hotline.yaml, not copy.yaml"):
        store.upload("copy.yaml", moved, "admin")
