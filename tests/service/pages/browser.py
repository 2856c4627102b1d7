"""Real-browser fixtures: Debian's Chromium driven by Playwright (nothing downloads a browser)
against the real server (``custos serve``) over a deployment seeded as ``make demo`` seeds one.

Under CI=true a missing Chromium or Playwright fails the tests; elsewhere it skips them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.deployment import initialise, open_deployment
from tests.conftest import make_config, require
from tests.server import Server
from tests.test_make_verifier import court_site

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))
import demo  # noqa: E402  (tools/ is not a package)

CHROMIUM = os.environ.get("CUSTOS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("CUSTOS_SCREENSHOTS")
"""Where the journeys save their screenshots (``make screenshots``: docs/screenshots)."""


@dataclass
class Demo:
    """The seeded deployment's home, what was seeded, and its server."""

    home: Path
    seeded: demo.Seeded
    server: Server
    config: Any

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def sign_in_link(self, name: str) -> str:
        deployment = open_deployment(self.config)
        try:
            operator = deployment.principals.get("operator").actor
            _, secret, _ = deployment.sign_in.make_link(name, operator)
        finally:
            deployment.close()
        return f"{self.url}/sign-in/link/{secret}"

    def api(self, method: str, path: str, who: str, body: object = None) -> Any:
        reply = self.server.call(method, path, self.seeded.tokens[who], json_body=body)
        assert reply.status < 300, reply.body
        return json.loads(reply.body) if reply.body else None

    def keys(self) -> list[str]:
        reply = self.server.call("GET", "/v1/log/key")
        return reply.body.decode().split()


def playwright_or_skip() -> Any:
    """``playwright.sync_api``, or a skip (a failure under CI) where it or Chromium is not."""
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "pip playwright is not installed")
    require(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_api


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A deployment seeded as ``make demo`` seeds one, served by ``custos serve``."""
    playwright_or_skip()
    base = tmp_path_factory.mktemp("demo")
    sqlite = f"sqlite:///{base / 'home' / 'custos.db'}"
    config = make_config(base, sqlite)
    initialise(config).deployment.close()
    clock = demo.MovingClock(datetime.now(UTC) - timedelta(days=21))
    deployment = open_deployment(config, clock=clock)
    try:
        seeded = demo.seed(deployment, clock)
    finally:
        deployment.close()
    server = Server(
        config.home,
        base / "server.log",
        workers=2,
        settings={
            "CUSTOS_DATABASE_URL": sqlite,
            "CUSTOS_PAGE_UPLOAD_MAX_BYTES": "1048576",
            "CUSTOS_TOTP_ROLES": ",".join(demo.SECOND_FACTOR_ROLES),
        },
    )
    try:
        server.wait_ready()
        yield Demo(config.home, seeded, server, config)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = playwright_or_skip()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot as docs/screenshots/NAME.png when asked to."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def one_file_verifier(tmp_path: Path, page: Any, base: str) -> tuple[Path, Path]:
    """Download the one-file verifier and the keys from the verification page."""
    page.goto(f"{base}/verify")
    with page.expect_download() as verifier_download:
        page.get_by_role("link", name="Download custos-verify.py").click()
    verifier = tmp_path / "custos-verify.py"
    verifier_download.value.save_as(verifier)
    with page.expect_download() as keys_download:
        page.get_by_role("link", name="Download the keys").click()
    keys = tmp_path / "custos-keys.txt"
    keys_download.value.save_as(keys)
    return verifier, keys


def run_verifier(verifier: Path, keys: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the downloaded verifier as a court would: a bare interpreter with only the standard
    library and ``cryptography``, outside the repository, trusting only the pinned keys."""
    site = verifier.parent / "court-site"
    if not site.exists():
        court_site(site)
    key_options = [option for key in keys.read_text().split() for option in ("--key", key)]
    return subprocess.run(
        [sys.executable, "-S", str(verifier), *arguments, *key_options],
        cwd=verifier.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site)},
    )


def sign_in_with_code(page: Any, site: Demo, name: str) -> None:
    """Sign ``name`` in with a link and the code of its enrolled authenticator (a role that
    signs in with a second factor). A code is good once: a second sign-in within the same
    30 seconds gives the next step's code, which the server accepts too, or waits for one."""
    import time

    import pyotp

    totp = pyotp.parse_uri(site.seeded.second_factors[name])
    for attempt in range(4):
        page.goto(site.sign_in_link(name))
        page.get_by_role("button", name="Continue to sign in").click()
        page.get_by_label("Code").fill(totp.at(time.time() + 30 * (attempt % 2)))
        page.get_by_role("button", name="Sign in").click()
        if "/sign-in" not in page.url:
            return
        time.sleep(15)
    raise AssertionError(f"{name} could not sign in with a code: {page.inner_text('main')}")
