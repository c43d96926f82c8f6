"""The régie's pages in headless Chromium (Debian's, driven by Playwright): each renders with no console
error and no request off the machine, its charts draw exactly the API's numbers (which the other tests tie
to the store and the chain), and a member signs in through a test EIP-1193 wallet. Screenshots of each
page go to test-artifacts/regie/ (or $DAISEE_ARTIFACTS/regie/)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from daisee.demo import DemoRun
from daisee.loop import Loop
from daisee.regie.publish import PublicationRule
from daisee.regie.service import Regie, RegieSettings
from tests.regie.test_web import call, payout_key, pmo_token, sign_in

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WALLET = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [window.testWalletAddress];
    if (method === "personal_sign") return await window.testWalletSign(params[0], params[1]);
    if (method === "eth_signTypedData_v4") return await window.testWalletSignTyped(params[0], params[1]);
    throw new Error(`the test wallet does not do ${method}`);
  },
};
"""


@pytest.fixture(scope="module")
def artifacts(project_root: Path) -> Path:
    folder = Path(os.environ.get("DAISEE_ARTIFACTS", project_root / "test-artifacts")) / "regie"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def served(played: tuple[Loop, DemoRun], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regie]:
    """The played loop's régie, publishing aggregates of 3 meters or more (it has 6)."""
    loop, run = played
    store = tmp_path_factory.mktemp("regie-pages") / "regie.sqlite"
    settings = RegieSettings(f"sqlite:///{store}", port=0, rule=PublicationRule(min_meters=3))
    service = Regie(settings, loop, run.deployment.block, run.deployment.consent_registry, loop.sender)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("headless Chromium is missing: install it with `apt-get install chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and requests off the régie are collected."""

    def __init__(self, browser: Browser, served: Regie) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", self._request)
        self.origin = served.url

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Request) -> None:
        if not request.url.startswith(self.origin):
            self.elsewhere.append(request.url)

    def open(self, path: str) -> Page:
        self.page.goto(self.origin + path, wait_until="networkidle")
        return self.page

    def charts(self) -> dict[str, Any]:
        return dict(
            self.page.evaluate("Object.fromEntries(Object.entries(window.regie.charts).map(([k, c]) => [k, c.data]))")
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser, served: Regie) -> Iterator[Watched]:
    page = Watched(browser, served)
    yield page
    assert page.errors == []
    assert page.elsewhere == []
    page.close()


def _day(served: Regie) -> str:
    return served.context.calendar.start(0).astimezone(served.context.calendar.tz).date().isoformat()


def _drawn(curve: dict[str, Any], local: str, total: str, grid: str) -> list[list[float | None]]:
    """What a chart of `curve` must draw: the total, the local part and the grid's part, in kWh, each point
    held until the next (the last repeated at the period's end)."""
    drawn = [[None if v is None else v / 1000 for v in curve[q]] for q in (total, local, grid)]
    return [values + values[-1:] for values in drawn]


def test_the_loop_page_draws_the_apis_curve(watched: Watched, served: Regie, artifacts: Path) -> None:
    query = f"?period=day&date={_day(served)}&granularity=hour"
    page = watched.open("/" + query)
    _, _, api = call(served, "GET", "/api/loop" + query)
    assert api["published"]["consumption"] is True
    charts = watched.charts()
    assert charts["loop-consumption"][1:] == _drawn(api["curve"], "AUTOCONS", "CONS", "COMPLEMENT")
    if api["published"]["production"]:
        assert charts["loop-production"][1:] == _drawn(api["curve"], "AUTOPROD", "PROD", "SURPLUS")
    assert page.locator("h1").inner_text() == "The loop's energy"
    figures = page.locator(".figures").inner_text()
    assert "taux d'autoproduction" in figures
    assert ("taux d'autoconsommation" in figures) is api["published"]["production"]
    page.screenshot(path=artifacts / "loop.png", full_page=True)


def test_a_loop_with_too_few_meters_says_so(watched: Watched, served: Regie, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(served, "context", served.context.__class__(served.context.facts, PublicationRule(), 250))
    page = watched.open(f"/?period=day&date={_day(served)}")
    assert "Too few meters to publish" in page.locator("main").inner_text()
    assert watched.charts() == {}


def test_a_member_signs_in_with_its_wallet_and_sees_its_page(
    watched: Watched, served: Regie, played: tuple[Loop, DemoRun], artifacts: Path
) -> None:
    _, run = played
    member = Account.from_key(payout_key(2))
    page = watched.page
    page.expose_function(
        "testWalletSign",
        lambda message_hex, address: member.sign_message(encode_defunct(hexstr=message_hex)).signature.to_0x_hex(),
    )
    page.add_init_script(f"window.testWalletAddress = {member.address!r};" + WALLET)
    watched.open("/member")
    page.screenshot(path=artifacts / "sign-in.png", full_page=True)
    page.click("#sign-in")
    page.wait_for_selector("#member-consumption canvas")
    assert member.address[:6] in page.locator(".account").inner_text()

    query = f"?period=day&date={_day(served)}"
    watched.open("/member" + query)
    token = sign_in(served, payout_key(2))
    _, _, api = call(served, "GET", "/api/member" + query, cookie=token)
    charts = watched.charts()
    assert charts["member-consumption"][1:] == _drawn(api["curve"], "AUTOCONS", "CONS", "COMPLEMENT")
    assert charts["member-loop"][1:] == _drawn(api["loop_curve"], "AUTOCONS", "CONS", "COMPLEMENT")
    # a prosumer exports only when its panels outrun its load, which a winter day may never see
    assert ("member-production" in charts) == bool(api["curve"]["total"]["PROD"])
    assert run.households[2].meter_id.hex()[:8] in page.locator(".lead").inner_text()
    assert page.locator("section[aria-labelledby=bills] tbody tr").count() >= 1
    page.screenshot(path=artifacts / "member.png", full_page=True)

    page.click("#sign-out")
    page.wait_for_selector("#sign-in")


def test_a_producer_sees_what_it_sold_in_the_loop_and_exported(watched: Watched, served: Regie) -> None:
    token = sign_in(served, payout_key(0))  # household 0 produces only: it exports every hour of daylight
    watched.context.add_cookies([{"name": "regie_session", "value": token, "url": served.url}])
    query = f"?period=day&date={_day(served)}"
    watched.open("/member" + query)
    _, _, api = call(served, "GET", "/api/member" + query, cookie=token)
    assert api["curve"]["total"]["PROD"] > 0
    assert watched.charts()["member-production"][1:] == _drawn(api["curve"], "AUTOPROD", "PROD", "SURPLUS")


def _wallet(page: Page, member: LocalAccount) -> None:
    """The test EIP-1193 wallet of `member` in `page`: it signs messages and EIP-712 documents."""
    page.expose_function(
        "testWalletSign",
        lambda message_hex, address: member.sign_message(encode_defunct(hexstr=message_hex)).signature.to_0x_hex(),
    )
    page.expose_function(
        "testWalletSignTyped",
        lambda address, typed: member.sign_message(
            encode_typed_data(full_message=json.loads(typed))
        ).signature.to_0x_hex(),
    )
    page.add_init_script(f"window.testWalletAddress = {member.address!r};" + WALLET)


def test_a_member_grants_and_revokes_from_its_page_and_the_grantee_sees_the_data_until_then(
    browser: Browser, watched: Watched, served: Regie, artifacts: Path
) -> None:
    household, grantee = 4, Account.from_key(b"\x03" * 32)
    member = Account.from_key(payout_key(household))
    _wallet(watched.page, member)
    watched.context.add_cookies(
        [{"name": "regie_session", "value": sign_in(served, payout_key(household)), "url": served.url}]
    )
    day = _day(served)
    page = watched.open(f"/member?period=day&date={day}")
    page.fill("#grant-form input[name=grantee]", grantee.address)
    page.select_option("#grant-form select[name=purpose]", "research")
    page.select_option("#grant-form select[name=granularity]", "hour")
    page.fill("#grant-form input[name=from]", day)
    page.fill("#grant-form input[name=until]", (date.fromisoformat(day) + timedelta(days=30)).isoformat())
    page.click("#grant-form button[type=submit]")
    row = page.wait_for_selector(f"#consent-list tr:has-text('{grantee.address}'):has-text('active')", timeout=30_000)
    consent_id = row.get_attribute("data-consent")
    assert consent_id is not None
    assert "research" in row.inner_text()
    page.screenshot(path=artifacts / "member-consents.png", full_page=True)

    viewer = Watched(browser, served)
    try:
        token = sign_in(served, grantee.key)
        viewer.context.add_cookies([{"name": "regie_session", "value": token, "url": served.url}])
        held = viewer.open("/shared")
        held.click(f"a[href='/shared/{consent_id}']")
        held.wait_for_selector("#shared-table")
        query = f"?period=day&date={day}"
        shared = viewer.open(f"/shared/{consent_id}{query}")
        _, _, api = call(served, "GET", f"/api/shared/{consent_id}{query}", cookie=token)
        cells = [row.split("\t") for row in shared.locator("#shared-table tbody").inner_text().splitlines()]
        shown = [(h, c) for h, c in zip(api["curve"]["horodate"], api["curve"]["CONS"], strict=True) if c is not None]
        assert [cell[0] for cell in cells] == [h for h, _ in shown]
        assert [cell[1] for cell in cells] == [f"{c / 1000:,.1f} kWh" for _, c in shown]
        assert "Shown by hour: the consent allows no finer." in shared.locator("main").inner_text()
        shared.screenshot(path=artifacts / "shared.png", full_page=True)

        page = watched.open(f"/member?period=day&date={day}")
        page.click(f"button.revoke[data-consent='{consent_id}']")
        page.wait_for_selector(f"#consent-list tr[data-consent='{consent_id}']:has-text('revoked')", timeout=30_000)
        after = viewer.open(f"/shared/{consent_id}{query}")
        assert f"consent {consent_id} is revoked: its data is no longer shared" in after.locator("main").inner_text()
        assert after.locator("#shared-table").count() == 0
        after.screenshot(path=artifacts / "shared-revoked.png", full_page=True)
        refused = [e for e in viewer.errors if "status of 403" in e]  # the browser's note of the refused page
        assert viewer.errors == refused
        assert len(refused) == 1
        assert viewer.elsewhere == []
    finally:
        viewer.close()
    status, _, refusal = call(served, "GET", f"/api/shared/{consent_id}{query}", cookie=token)
    assert (status, refusal) == (403, {"error": f"consent {consent_id} is revoked: its data is no longer shared"})

    page = watched.open(f"/member?period=day&date={day}")
    entries = call(served, "GET", "/api/access-log", cookie=sign_in(served, payout_key(household)))[2]["entries"]
    logged = [e for e in entries if e["consent_id"] == consent_id]
    assert [(e["reader"], e["what"]) for e in logged] == [(grantee.address, "curve")] * 3  # the two pages and the API
    assert page.locator("#access-log-table tbody tr").filter(has_text=grantee.address).count() == 3  # not the refusals
    page.screenshot(path=artifacts / "member-access-log.png", full_page=True)


def test_the_pmo_reads_the_billing_page(
    watched: Watched, served: Regie, played: tuple[Loop, DemoRun], artifacts: Path
) -> None:
    loop, run = played
    watched.context.add_cookies([{"name": "regie_session", "value": pmo_token(served, loop), "url": served.url}])
    page = watched.open(f"/billing?date={_day(served)}")
    rows = page.locator("#bills tbody tr")
    assert rows.count() == len(run.households)  # a month of each
    assert {row.split("\t")[0] for row in rows.all_inner_texts()} == {h.payout for h in run.households}
    page.screenshot(path=artifacts / "billing.png", full_page=True)


@pytest.mark.parametrize("period", ["week", "month", "year"])
def test_every_period_of_the_loop_renders_and_draws(
    watched: Watched, served: Regie, period: str, artifacts: Path
) -> None:
    query = f"?period={period}&date={_day(served)}"
    page = watched.open("/" + query)
    _, _, api = call(served, "GET", "/api/loop" + query)
    charts = watched.charts()
    assert charts["loop-consumption"][1:] == _drawn(api["curve"], "AUTOCONS", "CONS", "COMPLEMENT")
    assert page.locator("select[name=period]").input_value() == period
    page.screenshot(path=artifacts / f"loop-{period}.png", full_page=True)
