"""The dashboard as a person uses it: Debian's Chromium (headless, driven by chromium-driver
through Selenium) on https://api.codeb.test through the sandbox app server's Caddy (the name
mapped to the loopback port Caddy is published on, Caddy's internal CA accepted). Effects are
checked independently: what the domain serves and whether an old session cookie still works,
both with curl. Every page's browser console must stay free of errors; a screenshot of each page
is saved in the run's artifacts directory (CODEB_ARTIFACTS, else a pytest temporary directory)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from codeb_infra.api.dashboard import COOKIE
from tests.sandbox.conftest import Bootstrapped
from tests.sandbox.test_api import API, Api, codeb, new_key, ok, on_app, push_image
from tests.support.images import ensure_images

pytestmark = pytest.mark.sandbox

PROJECT = "dashshop"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def site(bootstrapped: Bootstrapped, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    b = bootstrapped
    started = time.monotonic()
    images = ensure_images()
    ok(codeb(b, "remove", PROJECT, "--force"))
    ok(codeb(b, "deploy", PROJECT, "--image", images["v1"], "--push"))
    ok(codeb(b, "promote", PROJECT))
    push_image(b, images["v2"])
    made = {role: new_key(b, role, name=f"dash {role}") for role in ("admin", "dev", "view")}
    keys = {role: key for role, (_, key) in made.items()}
    api = Api(b)
    status, answer = api.call(keys["dev"], "deploy_project", project=PROJECT, image=images["v2"])
    assert status == 200, answer
    root = tmp_path_factory.mktemp("dash-ca") / "root.pem"
    root.write_text(api.root)
    shots = Path(os.environ.get("CODEB_ARTIFACTS") or tmp_path_factory.mktemp("dashboard")) / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard test setup (deploy, promote, deploy through the API): {time.monotonic() - started:.1f}s")
    yield {
        "b": b,
        "keys": keys,
        "api": api,
        "root": str(root),
        "shots": shots,
        "base": f"https://{API}:{api.port}",
        "sessions": [],
    }
    for key_id, _ in made.values():
        ok(codeb(b, "keys", "revoke", key_id))


@pytest.fixture(scope="module")
def browser(site: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--host-resolver-rules=MAP {API} 127.0.0.1, MAP * ~NOTFOUND",
        "--ignore-certificate-errors",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(180)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The console's errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visit(driver: webdriver.Chrome, site: dict[str, Any], path: str, shot: str | None = None) -> None:
    driver.get(site["base"] + path)
    WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if shot:
        driver.save_screenshot(str(site["shots"] / f"{shot}.png"))
    assert console_errors(driver) == [], path


def sign_in(driver: webdriver.Chrome, site: dict[str, Any], role: str) -> None:
    driver.delete_all_cookies()
    visit(driver, site, "/sign-in", "sign-in")
    driver.find_element(By.ID, "key").send_keys(site["keys"][role])
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 120).until(expected_conditions.presence_of_element_located((By.ID, "projects")))
    assert f"dash {role}" in driver.find_element(By.ID, "who").text
    assert site["keys"][role] not in driver.page_source and site["keys"][role] not in driver.current_url
    site["sessions"].append(driver.get_cookie(COOKIE)["value"])  # type: ignore[index]
    assert console_errors(driver) == []


def curl(site: dict[str, Any], host: str, path: str = "/", cookie: str | None = None) -> tuple[str, str]:
    """(status and redirect target, body) of one GET through Caddy, by curl."""
    port = site["api"].port
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--resolve",
            f"{host}:{port}:127.0.0.1",
            "--cacert",
            site["root"],
            "-w",
            "\n%{http_code} %{redirect_url}",
            *(["-H", f"Cookie: {COOKIE}={cookie}"] if cookie else []),
            f"https://{host}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    return status.strip(), body


def test_a_view_key_sees_projects_but_no_switch_and_a_forged_post_is_refused(
    browser: webdriver.Chrome, site: dict[str, Any]
) -> None:
    sign_in(browser, site, "view")
    row = browser.find_element(By.CSS_SELECTOR, f'tr.project[data-project="{PROJECT}"]')
    assert f"{PROJECT}.codeb.test" in row.text and "healthy" in row.find_element(By.CLASS_NAME, "health").text
    visit(browser, site, "/projects", "projects")
    visit(browser, site, f"/p/{PROJECT}/production")
    assert browser.find_elements(By.ID, "promote") == [] and browser.find_elements(By.ID, "slot-blue")
    forged = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/p/{PROJECT}/production/promote', {{method: 'POST', credentials: 'same-origin'}})"
        ".then(r => r.text().then(t => done([r.status, t])));"
    )
    assert forged[0] == 403 and "CSRF token is missing or wrong" in forged[1]
    with_token = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];"
        f"fetch('/p/{PROJECT}/production/promote', {{method: 'POST', headers: {{'X-CSRF-Token': token}}}})"
        ".then(r => r.text().then(t => done([r.status, t])));"
    )
    assert "a view key may not use promote (needs dev)" in with_token[1]
    errors = console_errors(browser)  # the forged POST's 403, and nothing else
    assert len(errors) == 1 and "403" in errors[0], errors
    assert curl(site, f"{PROJECT}.codeb.test")[1].strip() == "v1"

    cookie = browser.get_cookie(COOKIE)
    assert cookie and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert curl(site, API, "/projects", cookie["value"])[0] == "200"
    browser.find_element(By.ID, "sign-out").click()
    WebDriverWait(browser, 120).until(expected_conditions.presence_of_element_located((By.ID, "key")))
    assert curl(site, API, "/projects", cookie["value"])[0] == f"303 https://{API}:{site['api'].port}/sign-in"
    assert console_errors(browser) == []


def test_a_dev_key_promotes_and_the_page_follows_without_a_reload(
    browser: webdriver.Chrome, site: dict[str, Any]
) -> None:
    sign_in(browser, site, "dev")
    visit(browser, site, f"/p/{PROJECT}/production")
    before = browser.find_element(By.ID, "active-slot").text
    other = {"blue": "green", "green": "blue"}[before]
    assert browser.find_element(By.ID, f"slot-{other}").get_attribute("data-state") == "deployed"
    browser.execute_script("window.notReloaded = true;")
    browser.find_element(By.ID, "promote").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()
    WebDriverWait(browser, 120).until(
        lambda d: (
            d.find_element(By.ID, "active-slot").text == other and d.find_elements(By.CSS_SELECTOR, "#result .done")
        )
    )
    assert browser.execute_script("return window.notReloaded === true")
    assert curl(site, f"{PROJECT}.codeb.test")[1].strip() == "v2"
    slot = browser.find_element(By.ID, f"slot-{before}")
    assert slot.get_attribute("data-state") == "grace" and "Grace left" in slot.text
    assert "v2" in browser.find_element(By.CSS_SELECTOR, f"#slot-{other} .release").text
    time.sleep(2.5)  # one more poll of the slots, which must not log an error either
    browser.save_screenshot(str(site["shots"] / "project.png"))
    assert console_errors(browser) == []


def test_the_admin_pages_render_without_console_errors(browser: webdriver.Chrome, site: dict[str, Any]) -> None:
    sign_in(browser, site, "admin")
    visit(browser, site, "/projects", "projects-admin")
    visit(browser, site, "/backups", "backups")
    # Read through the API's report key: the storage server's archiver and the backup server's store.
    checks = browser.find_element(By.CSS_SELECTOR, "table.checks").text
    assert "WAL archiving" in checks and "could not be asked" not in checks, checks
    assert "newest 0000" in browser.find_element(By.ID, "wal").text
    visit(browser, site, "/health-check", "health")
    assert browser.find_elements(By.ID, "healthy") or browser.find_elements(By.CSS_SELECTOR, "tr.bad")
    visit(browser, site, f"/audit?project={PROJECT}&outcome=allowed", "audit")
    assert "promote" in browser.page_source and "dashboard" in browser.page_source
    visit(browser, site, "/keys", "keys")
    assert "dash view" in browser.page_source
    browser.find_element(By.NAME, "name").send_keys("dash made")
    browser.find_element(By.ID, "create-key").click()
    made = WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#new-key pre"))[0].text
    assert made.startswith("codeb_view_")
    site["keys"]["made"] = made  # grepped for in the logs below
    row_id = "key-" + browser.find_element(By.ID, "new-key").text.split()[1]  # "Key ID (view) made. ..."
    browser.save_screenshot(str(site["shots"] / "key-made.png"))
    assert site["api"].call(made, "list_projects")[0] == 200
    visit(browser, site, "/keys")
    assert made not in browser.page_source  # shown once
    row = browser.find_element(By.ID, row_id)
    assert "dash made" in row.text
    row.find_element(By.CLASS_NAME, "revoke").click()  # asks first: turned down, the key still works
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).dismiss()
    assert site["api"].call(made, "list_projects")[0] == 200
    browser.find_element(By.ID, row_id).find_element(By.CLASS_NAME, "revoke").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()
    WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "revoked" in d.find_element(By.ID, row_id).text
    )
    status, answer = site["api"].call(made, "list_projects")
    assert status == 401 and "was revoked" in answer["error"]
    assert console_errors(browser) == []
    shutil.copy(site["shots"] / "project.png", site["shots"] / "readme.png")


def test_no_key_or_session_id_reaches_the_journal_or_caddys_log(site: dict[str, Any]) -> None:
    logs = on_app(site["b"], "journalctl --no-pager -o cat -u codeb-api -u caddy; cat /var/log/caddy/api.access.log")
    assert "/sign-in" in logs and f"{COOKIE}=" not in logs
    for secret in [*site["keys"].values(), *site["sessions"]]:
        assert secret not in logs
