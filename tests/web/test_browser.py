"""The worklist page in a real browser: headless Chromium (the OS's package) driven by Playwright,
against ``yawlflow serve`` run as a new user runs it, with the README's example spec.

The server is the CLI in a child process (``--port 0``: the OS picks a free port, and uvicorn's
"Uvicorn running on URL" line says which); the tests wait for that line, not for time to pass,
and then only on what the page shows (Playwright's ``expect`` waits for it).

Skipped, with the reason, where Playwright is not installed or there is no Chromium
(``apt-get install chromium``; bash .ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from serving import serving

from yawlflow.web import hash_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"Playwright is not installed ({exc}): pip install playwright", allow_module_level=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip("no Chromium executable (apt-get install chromium; bash .ci/run installs it)", allow_module_level=True)

EXAMPLE = Path(__file__).parents[2] / "examples" / "orders_external.yaml"
# plain key -> (role, tenant); each scenario has keys of its own (each key has its own rate limit)
KEYS = {
    "acme-person": ("operator", "acme"),
    "acme-robot": ("operator", "acme"),
    "acme-viewer": ("viewer", "acme"),
    "acme-viewer-robot": ("operator", "acme"),
    "globex-person": ("operator", "globex"),
    "globex-robot": ("operator", "globex"),
}
@dataclass
class Server:
    """``yawlflow serve`` in a child process: its URL, and a client for a key of its."""

    url: str
    output: list[str]

    def api(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def start_case(self, key: str) -> str:
        with self.api(key) as client:
            r = client.post("/cases", json={"spec": "orders_external"})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The CLI serving the example spec on a free port, as docs/serve.md tells a new user to run it."""
    keys = tmp_path_factory.mktemp("serve") / "keys.yaml"
    keys.write_text("keys:\n" + "".join(f"  {plain}:\n    sha256: {hash_key(plain)}\n    role: {role}\n"
                                        f"    tenant: {tenant}\n" for plain, (role, tenant) in KEYS.items()))
    cmd = [sys.executable, "-m", "yawlflow", "serve", "--port", "0", "--keys", str(keys), "--spec", str(EXAMPLE)]
    with serving(cmd) as served:
        yield Server(url=served.url, output=served.output)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) per test."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    context.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)
    try:
        yield context.new_page()
    finally:
        context.close()  # closes the page's streams before the server stops


def log_in(page: Page, server: Server, key: str) -> None:
    """Open the page and log in with the keyboard only."""
    page.goto(server.url + "/")
    field = page.get_by_label("API key")
    field.focus()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Logged in as")
    expect(page.get_by_text(re.compile(r"^Live: new work appears"))).to_be_visible()


def card(page: Page, case_id: str, task: str) -> Locator:
    """The work item card of ``task`` in case ``case_id`` on the page."""
    return page.locator("li.card").filter(has_text=case_id).filter(has=page.get_by_role("heading", name=task))


def no_horizontal_scroll(page: Page, width: int) -> None:
    scrolls = page.evaluate("document.documentElement.scrollWidth")
    assert scrolls <= width, f"the page is {scrolls}px wide in a {width}px window"


FORCE_COMPLETE = """async (path) => (await fetch(path, {method: "POST", body: "{}", headers: {
    "Content-Type": "application/json",
    "Authorization": "Bearer " + sessionStorage.getItem("yawlflow.key")}})).status"""


def test_a_person_starts_a_case_sees_the_item_completes_it_and_sees_the_case_finish(
    server: Server, page: Page
) -> None:
    page.set_viewport_size({"width": 375, "height": 812})  # a phone
    log_in(page, server, "acme-person")
    # a case started elsewhere appears by itself (the live stream), no reload
    elsewhere = server.start_case("acme-robot")
    expect(card(page, elsewhere, "approve")).to_be_visible()
    # the person starts one from the page
    page.get_by_label("Spec").select_option("orders_external")
    page.get_by_role("button", name="Start case").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Started case ")
    said = re.search(r"Started case (\S+) of", status.inner_text())
    assert said is not None
    case_id = said.group(1)
    approve = card(page, case_id, "approve")
    expect(approve).to_be_visible()
    expect(card(page, case_id, "withdraw")).to_be_visible()
    no_horizontal_scroll(page, 375)

    approve.get_by_role("button", name="Start approve").click()
    output = card(page, case_id, "approve").get_by_label("Output of approve (a JSON object)")
    expect(output).to_be_focused()  # focus moves to what comes next
    expect(card(page, case_id, "withdraw")).to_have_count(0)  # the deferred choice withdrew it

    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    complete = card(page, case_id, "approve").get_by_role("button", name="Complete approve")
    for bad, says in (("{approved: yes}", "not valid JSON"), ("[1]", "must be a JSON object")):
        output.fill(bad)
        output.press("Tab")  # to the Complete button
        expect(complete).to_be_focused()
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # focus shows
        page.keyboard.press("Enter")
        error = card(page, case_id, "approve").locator("p.error")
        expect(error).to_contain_text(says)
        expect(output).to_have_attribute("aria-invalid", "true")
        expect(status).to_contain_text(says)
        assert sent == [], sent  # nothing was sent

    output.fill('{"approved": true, "by": "the person"}')
    complete.click()
    expect(status).to_contain_text(f"Completed approve. Case {case_id} is completed.")
    assert len(sent) == 1
    assert re.search(f"/api/v1/cases/{case_id}/items/\\d+/complete$", sent[0]), sent
    expect(card(page, case_id, "approve")).to_have_count(0)
    finished = page.locator("#cases li").filter(has_text=case_id)
    expect(finished).to_contain_text("completed")
    expect(page.locator("#cases li").filter(has_text=elsewhere)).to_contain_text("running")

    # its page: the picture with the case drawn over it, the marking, the history
    finished.get_by_role("link", name=case_id).click()
    expect(page.get_by_role("heading", name=f"Case {case_id}")).to_be_visible()
    expect(page.locator("#case-status")).to_have_text("completed")
    picture = page.get_by_role("img", name=re.compile(f"case {case_id} drawn over it"))
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("document.getElementById('picture').complete")
    assert page.evaluate("document.getElementById('picture').naturalWidth") > 0
    history = page.locator("#history li")
    expect(history.first).to_have_text(re.compile(r"^case\.started"))
    expect(history.last).to_have_text(re.compile(r"^case\.completed"))
    expect(page.locator("#history")).to_contain_text("item.completed approve")
    expect(page.locator("#marking")).to_contain_text("Condition end: 1 token")
    expect(page.locator("#marking")).to_contain_text("Task approve: completed 1 time")
    expect(page.locator("#case-data-view")).to_contain_text('"by": "the person"')
    no_horizontal_scroll(page, 375)


def test_a_viewer_sees_the_work_but_cannot_do_it(server: Server, page: Page) -> None:
    log_in(page, server, "acme-viewer")
    expect(page.get_by_text("Your key is a viewer's")).to_be_visible()
    expect(page.get_by_role("button", name="Start case")).to_be_hidden()
    case_id = server.start_case("acme-viewer-robot")
    offered = card(page, case_id, "approve")
    expect(offered).to_contain_text("offered")
    expect(offered.get_by_role("button")).to_have_count(0)
    with server.api("acme-viewer-robot") as robot:
        item = next(i for i in robot.get("/items").json()["items"] if i["case"] == case_id and i["task"] == "approve")
        assert robot.post(f"/cases/{case_id}/items/{item['id']}/start").status_code == 200
    started = card(page, case_id, "approve")
    expect(started).to_contain_text("started")  # live, and still nothing to press
    expect(started.get_by_role("button")).to_have_count(0)
    expect(started.get_by_role("textbox")).to_have_count(0)
    path = f"/api/v1/cases/{case_id}/items/{item['id']}/complete"
    assert page.evaluate(FORCE_COMPLETE, path) == 403  # forced: the API refuses
    page.goto(f"{server.url}/cases/{case_id}")  # the case page: the same
    expect(page.locator("#case-status")).to_have_text("running")
    expect(page.locator("#case-items li.card")).to_have_count(1)
    expect(page.locator("#case-items").get_by_role("button")).to_have_count(0)
    expect(page.locator("#marking")).to_contain_text("Task approve: 1 started")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API key")).to_be_focused()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_tenant_never_sees_another_tenants_work(server: Server, page: Page) -> None:
    theirs = server.start_case("acme-robot")
    log_in(page, server, "globex-person")
    later = server.start_case("acme-robot")  # while this page is live
    ours = server.start_case("globex-robot")
    expect(card(page, ours, "approve")).to_be_visible()  # the stream got there...
    expect(page.locator("#cases li").filter(has_text=ours)).to_be_visible()
    text = page.locator("main").inner_text()
    for other in (theirs, later):  # ...and never showed the other tenant's
        assert other not in text
    page.goto(f"{server.url}/cases/{theirs}")
    expect(page.get_by_role("status")).to_contain_text(f"no case '{theirs}'")
    expect(page.locator("#case-status")).to_have_text("")
    expect(page.locator("#picture")).to_be_hidden()
    status = page.evaluate("""async (path) => (await fetch(path, {headers: {
        "Authorization": "Bearer " + sessionStorage.getItem("yawlflow.key")}})).status""",
                           f"/api/v1/specs/orders_external/picture?case={theirs}")
    assert status == 404
