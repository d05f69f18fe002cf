"""A real browser (Debian's headless Chromium driven by playwright) against the app on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rag.jsonl_log import read_jsonl

from .conftest import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium); "
                                                     ".ci/run installs it"),
]

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "When does the ICO handle rectification?"
MARKERS = "#chat a[href^='#src-']"  # citation markers: links to their source cards


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield b
        b.close()


def open_page(browser, url):
    """A fresh page at the app; returns (page, list of requests that left the machine)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if urlsplit(r.url).hostname not in (None, "127.0.0.1", "localhost") and not r.url.startswith("data:")
            else None)
    page.goto(url)
    page.wait_for_selector("#question textarea")
    return page, outside


def ask(page, question):
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    # the answer streams into the chat; the sources panel is filled when it is complete
    page.wait_for_selector("#sources .src-turn.active .src-filters", timeout=60_000)


def test_question_answer_citation_click_and_screenshot(browser, app_server, test_output):
    page, outside = open_page(browser, app_server.url)
    assert page.locator("#chat").get_by_text(QUESTION).count() >= 1  # offered as an example on a first visit
    ask(page, QUESTION)
    page.wait_for_selector(MARKERS)
    page.wait_for_selector("#sources .src-card.cited")
    assert "Information Commissioner" in page.inner_text("#chat")
    cards = page.locator("#sources .src-turn.active .src-card.cited")
    assert cards.count() >= 1  # only the decisions that answer are cited
    assert any(label in page.inner_text("#sources") for label in ("23 009 429", "24 005 748", "002_7d099216e168a9a0"))

    marker = page.locator(MARKERS).first
    target = marker.get_attribute("href").lstrip("#")
    marker.click()
    element = page.locator(f"[id='{target}']")
    card = page.locator("#sources .src-card.is-target")
    page.wait_for_function("id => document.getElementById(id).classList.contains('is-target')", arg=target)
    assert card.count() == 1 and element.is_visible()
    decision = marker.inner_text().split(" ¶")[0].removesuffix(" summary")
    assert card.locator(".src-label").inner_text() == decision
    box = element.bounding_box()
    assert box and 0 <= box["y"] < 900, box  # scrolled into view
    assert page.url.rstrip("/") == app_server.url.rstrip("/")  # the click did not navigate

    path = test_output / "ui-answer.png"
    page.screenshot(path=str(path))
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(path, docs / "screenshot.png")
    assert outside == [], f"the page called out to {outside}"

    # thumbs down on the answer, in the chat itself, lands in the feedback log
    page.get_by_role("button", name="Dislike").first.click()
    page.wait_for_function("() => document.body.innerText.includes('feedback was recorded')")
    last = read_jsonl(app_server.settings.feedback_log_path)[-1]
    assert last["rating"] == "down" and last["question"] == QUESTION and last["citations"]
    page.close()


def test_hostile_decision_is_shown_as_text_never_run(browser, upload_app_server, hostile_upload):
    page, outside = open_page(browser, upload_app_server.url)
    ask(page, "Why did the council miss the assisted bin collection?")
    page.wait_for_selector("#sources .src-card")
    panel = page.inner_text("#sources")
    assert "25 000 111" in panel
    assert "<script>" in panel  # displayed literally, in the sources and in the answer
    assert "<script>" in page.inner_text("#chat") and "[click me](javascript:" in page.inner_text("#chat")
    for summary in page.locator("#sources details.src-also > summary").all():
        summary.click()  # open "Also retrieved" too
    page.hover("#sources .src-card >> nth=0")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#sources script, #sources img, #chat .message-content script, "
                        "#chat .message-content img, #chat .message-content b[onmouseover]").count() == 0
    assert page.locator("#chat .message-content a[href^='javascript']").count() == 0
    assert outside == [], f"the page called out to {outside}"  # e.g. the tracking pixel in the decision
    page.close()
