"""The admin dashboard in headless Chromium, against the real API served by uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.async_api import Dialog, Page, Request, Route, async_playwright, expect

from api.app import create_app
from api.auth import AuthSettings, issue_token
from tests.conftest import REPO, fake_render_command
from tests.fixtures_api import JWT_SECRET, bearer
from tests.test_api import ADMIN, STUDENT, closed_port_url, job_body, wait_for_row
from videoq.embedded_postgres import find_free_port
from videoq.jobs import JobStatus
from videoq.settings import Settings

# Debian's package; Playwright's own browser download cannot run here, and is not needed.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "test-artifacts" / "dashboard.png"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
# Playwright's default of 5 s is shorter than a render of the fake renderer plus a poll.
EXPECT_TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's chromium with .ci/install-browser.sh",
)


@pytest.fixture
async def live_api(
    auth_settings: AuthSettings, projection_db_url: str
) -> AsyncIterator[Callable[[Settings], Awaitable[str]]]:
    """Serve the app for given settings with uvicorn on a free loopback port and return its URL.

    Depending on ``projection_db_url`` makes the server stop before the test's database is
    dropped.
    """
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> str:
        port = find_free_port()
        config = uvicorn.Config(
            create_app(settings, auth_settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        deadline = time.monotonic() + 20
        while not server.started:
            if task.done():
                task.result()
                raise AssertionError("uvicorn stopped before it started serving")
            assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
            await asyncio.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*(task for _, task in servers))


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A Chromium page whose requests may reach only loopback.

    Requests to other hosts are aborted and listed in ``page.offsite_requests``.
    """
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(viewport={"width": 1440, "height": 1100})
        offsite: list[str] = []

        async def keep_on_loopback(route: Route, request: Request) -> None:
            if urlsplit(request.url).hostname in LOOPBACK_HOSTS:
                await route.continue_()
            else:
                offsite.append(request.url)
                await route.abort()

        await context.route("**/*", keep_on_loopback)
        new_page = await context.new_page()
        new_page.offsite_requests = offsite
        try:
            yield new_page
        finally:
            await browser.close()


async def sign_in(page: Page, token: str) -> None:
    await expect(page.locator("#token-dialog")).to_be_visible()
    await page.fill("#token-input", token)
    await page.click("#token-submit")


def figure(page: Page, name: str, **attributes: str):
    selector = f'[data-figure="{name}"]'
    selector += "".join(f'[data-{key}="{value}"]' for key, value in attributes.items())
    return page.locator(selector)


async def wait_for_status(
    http: httpx.AsyncClient, job_id: str, status: str, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/v1/jobs/{job_id}", headers=bearer(ADMIN, admin=True))
        assert response.status_code == 200, response.text
        if response.json()["status"] == status:
            return
        assert time.monotonic() < deadline, f"job {job_id} is {response.json()['status']}"
        await asyncio.sleep(0.2)


async def test_dashboard_follows_jobs_and_cancels(
    page, live_api, api_settings, projection_worker_for, projection_pool, tmp_path
):
    # One standard slot and no Manim slot: the standard job renders for 2.5 s, the Manim job
    # stays queued until the test cancels it.
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 2.5),
        max_renders=1,
        max_manim_renders=0,
    )
    await projection_worker_for(settings)
    base_url = await live_api(settings)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    await page.goto(f"{base_url}/admin")
    await sign_in(page, issue_token(JWT_SECRET, ADMIN, admin=True))
    await expect(page.locator("#token-dialog")).to_be_hidden()
    await expect(figure(page, "queued-total")).to_have_text("0")
    await expect(figure(page, "capacity", engine="standard")).to_have_text("1")
    await expect(page.locator("#peak-badge")).to_have_text("Off-peak")

    async with httpx.AsyncClient(base_url=base_url) as http:
        headers = bearer(STUDENT)
        body = job_body(job_type="doubt", engine="standard", title="Why is the sky blue?")
        rendered = (await http.post("/v1/jobs", json=body, headers=headers)).json()["id"]
        body = job_body(job_type="daily_ca", engine="manim", title="Today's current affairs")
        waiting = (await http.post("/v1/jobs", json=body, headers=headers)).json()["id"]

        await expect(figure(page, "rendering", engine="standard")).to_have_text("1")
        await expect(figure(page, "queued", priority="low", engine="manim")).to_have_text("1")
        await expect(figure(page, "oldest-id")).to_have_text(waiting)
        await expect(page.locator(f'tr[data-job-id="{rendered}"]')).to_contain_text("rendering")

        await expect(figure(page, "completed-last-hour")).to_have_text("1")
        await expect(figure(page, "rendering", engine="standard")).to_have_text("0")
        await expect(figure(page, "render-p50")).not_to_have_text("–")
        row = page.locator(f'tr[data-job-id="{waiting}"]')
        link = row.locator('[data-action="temporal"]')
        await expect(link).to_have_attribute(
            "href", f"http://127.0.0.1:8233/namespaces/default/workflows/{waiting}"
        )

        confirmations: list[str] = []

        async def accept(dialog: Dialog) -> None:
            confirmations.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await row.locator('button[data-action="cancel"]').click()
        await wait_for_status(http, waiting, "cancelled")
        await wait_for_row(projection_pool, waiting, JobStatus.CANCELLED)

    assert confirmations == [f'Cancel job {waiting} ("Today\'s current affairs")?']
    await expect(row.locator('[data-field="status"]')).to_have_text("cancelled")
    await expect(row.locator('button[data-action="retry"]')).to_be_visible()
    await expect(figure(page, "queued-total")).to_have_text("0")
    await expect(page.locator("#banner")).to_be_hidden()

    await page.select_option("#status-filter", "completed")
    await expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
    await expect(page.locator(f'tr[data-job-id="{rendered}"]')).to_be_visible()
    await page.select_option("#status-filter", "")
    await expect(page.locator("#jobs-table tbody tr")).to_have_count(2)

    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page.offsite_requests == []


async def test_dashboard_asks_again_for_rejected_token(page, live_api, api_settings):
    base_url = await live_api(api_settings())
    await page.goto(f"{base_url}/admin")
    error = page.locator("#token-error")

    await sign_in(page, issue_token(JWT_SECRET, STUDENT))
    await expect(error).to_have_text(
        "This token is valid but has no admin role. Enter an admin token."
    )
    await sign_in(page, "not-a-jwt")
    await expect(error).to_have_text("The token was rejected: malformed token.")
    await sign_in(page, issue_token(JWT_SECRET, ADMIN, admin=True))
    await expect(page.locator("#token-dialog")).to_be_hidden()
    await expect(figure(page, "queued-total")).to_have_text("0")

    # The token stays in the tab's session storage, so a reload does not ask again.
    await page.reload()
    await expect(figure(page, "queued-total")).to_have_text("0")
    await expect(page.locator("#token-dialog")).to_be_hidden()
    assert page.offsite_requests == []


async def test_dashboard_banner_while_database_down(page, live_api, api_settings):
    base_url = await live_api(api_settings(database_url=closed_port_url()))
    await page.goto(f"{base_url}/admin")

    await sign_in(page, issue_token(JWT_SECRET, ADMIN, admin=True))

    banner = page.locator("#banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Service unavailable: database unavailable")
    await expect(page.locator("#token-dialog")).to_be_hidden()
