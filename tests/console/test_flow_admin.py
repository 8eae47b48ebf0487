"""Flow versions through a real server as its admin: a bad upload answers file:line and
reason, a good one is activated (the configuration page shows the new hotline number at
once) and rolled back; each change is in the audit log with the version before and after;
an analyst may not upload."""

from __future__ import annotations

from typing import Any

import httpx

from app.auth import Role
from tests.console.conftest import Console
from tests.console.test_pages import page
from tests.helpers.auth import ADMIN
from tests.helpers.server import KO_FLOW, KO_NUMBER

NEW_NUMBER = "4000000099"


def test_admin_uploads_activates_and_rolls_back_a_flow(console: Console) -> None:
    admin = console.roles[Role.ADMIN]

    def call(method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{console.url}/v1/config/flows{path}", json=body,
                             cookies=admin.cookies, headers=admin.headers, timeout=60)

    original = KO_FLOW.read_text(encoding="utf-8")
    numbers = f'hotline_numbers: ["{KO_NUMBER}"]'
    assert numbers in original
    broken = original.replace("id: ko_calls", "id: ko_calls\nstart_node_typo: 1")
    refused = call("POST", "", {"filename": KO_FLOW.name, "text": broken})
    assert refused.status_code == 422
    assert f"{KO_FLOW.name}:5: " in refused.text, refused.text  # the line after the id

    changed = original.replace(numbers, f'hotline_numbers: ["{KO_NUMBER}", "{NEW_NUMBER}"]')
    uploaded = call("POST", "", {"filename": KO_FLOW.name, "text": changed})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["version"] == 2 and not uploaded.json()["active"]
    listed = call("GET", "/ko_calls/versions").json()["versions"]
    assert [(v["version"], v["active"]) for v in listed] == [(2, False), (1, True)]
    assert NEW_NUMBER not in page(console, "/console/config", Role.ADMIN).text

    activated = call("POST", "/ko_calls/versions/2/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json() == {"flow": "ko_calls", "active": 2, "previous": 1}
    assert NEW_NUMBER in page(console, "/console/config", Role.ADMIN).text

    back = call("POST", "/ko_calls/rollback")
    assert back.status_code == 200 and back.json()["active"] == 1, back.text
    assert NEW_NUMBER not in page(console, "/console/config", Role.ADMIN).text
    assert call("POST", "/ko_calls/rollback").status_code == 422  # nothing earlier

    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, timeout=60,
                      params={"target": "flow:ko_calls"}).json()["items"]
    changes = {(a["action"], a["actor"]): (a["before"], a["after"]) for a in audit
               if a["action"].startswith("flow.")}
    assert changes[("flow.activate", admin.name)] == ({"active": 1}, {"active": 2})
    assert changes[("flow.rollback", admin.name)] == ({"active": 2}, {"active": 1})
    assert changes[("flow.upload", admin.name)][1]["version"] == 2

    analyst = console.roles[Role.ANALYST]
    denied = httpx.post(f"{console.url}/v1/config/flows", cookies=analyst.cookies,
                        headers=analyst.headers, timeout=60,
                        json={"filename": KO_FLOW.name, "text": changed})
    assert denied.status_code == 403
