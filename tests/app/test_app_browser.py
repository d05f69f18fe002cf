"""A real browser (Debian's headless Chromium driven by playwright) against the app on loopback."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import SAMPLE_DIR, build_index

from ui.audit_log import read_jsonl

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


def open_page(browser, url, ready="#question textarea", color_scheme="light"):
    """A fresh page at the app; returns (page, list of requests that left the machine)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if urlsplit(r.url).hostname not in (None, "127.0.0.1", "localhost") and not r.url.startswith("data:")
            else None)
    page.goto(url)
    page.wait_for_selector(ready)
    return page, outside


def wait_for_viewer(page, label):
    """Wait until the viewer shows this decision (case number or document id) and has placed the focus."""
    page.wait_for_selector("#viewer .viewer[data-ref]", state="visible", timeout=30_000)
    page.wait_for_function("label => document.getElementById('viewer-title') && "
                           "document.getElementById('viewer-title').textContent.trim() === label", arg=label)
    page.wait_for_function("() => { const a = document.activeElement; return a && (a.classList.contains('vpara') "
                           "|| a.id === 'viewer-title'); }", timeout=10_000)


def assert_in_view(locator, height=900):
    """The element is shown and inside the window."""
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box and 0 <= box["y"] and box["y"] + min(box["height"], 100) <= height, box


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

    path = test_output / "ui-answer.png"
    page.screenshot(path=str(path))
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(path, docs / "screenshot.png")

    # a citation marker opens its decision in the viewer, the cited paragraph marked, in view and focused
    marker = page.locator(MARKERS).first
    target = marker.get_attribute("href").lstrip("#")
    decision = marker.inner_text().split(" ¶")[0].removesuffix(" summary")
    paragraph = int(target.rsplit("-p", 1)[1]) if "-p" in target else None
    marker.click()
    wait_for_viewer(page, decision)
    if paragraph is not None:
        para = page.locator(f"#viewer #vp-{paragraph}")
        assert "cited" in para.get_attribute("class")
        assert_in_view(para)
        assert page.evaluate("() => document.activeElement.id") == f"vp-{paragraph}"
    assert page.url.rstrip("/") == app_server.url.rstrip("/")  # opened in place, no reload
    # back in the conversation, the marker's card is highlighted in the sources panel
    page.click("#back-btn")
    page.wait_for_selector("#chat", state="visible")
    card = page.locator("#sources .src-card.is-target")
    assert card.count() == 1 and card.get_attribute("data-ref") in (decision.replace(" ", "-"), decision)
    assert page.locator(f"[id='{target}']").is_visible()
    # the card's "Read the whole decision" opens it too, every paragraph the answer cited from it marked
    cited = [int(p) for p in card.get_attribute("data-paras").split(",") if p]
    card.locator("a.src-read").click()
    wait_for_viewer(page, decision)
    assert [int(p) for p in page.locator("#viewer .vpara.cited").evaluate_all(
        "els => els.map(e => e.dataset.para)")] == sorted(cited)
    page.click("#back-btn")
    page.wait_for_selector("#chat", state="visible")
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


# the decision viewer, the decisions browser, shared links, accessibility ------------------------------------------
SYNTHETIC_ROWS = 60  # beside the 5 samples: 65 decisions, three pages of 25


@pytest.fixture(scope="module")
def browse_app(sample_index_dir, embedder, tmp_path_factory):
    """The app over a copy of the sample index plus 60 synthetic decisions written as catalog rows (what the
    browser reads; they have no passages, so the chat never cites them)."""
    from bench.browse import fill_catalog
    from core.settings import load_settings
    from ingest.catalog import Catalog

    from .conftest import _start, _stop, free_port

    root = tmp_path_factory.mktemp("browse-app")
    index_dir = root / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(".lock"))
    catalog = Catalog(index_dir / "catalog.sqlite", create=False)
    fill_catalog(catalog, SYNTHETIC_ROWS)
    catalog.close()
    settings = load_settings(index_dir=index_dir, log_dir=root / "logs", host="127.0.0.1", port=free_port(),
                             allow_upload=False)
    running = _start(settings, embedder)
    yield running
    _stop(running)


@pytest.fixture(scope="module")
def browse_app_pg(postgres_server, embedder, tmp_path_factory):
    """The same app and rows with the catalog on a real PostgreSQL server (OMBUDS_CATALOG_URL): the samples
    ingested into it, then the same 60 synthetic rows."""
    from bench.browse import fill_catalog
    from core.settings import load_settings
    from ingest.catalog_pg import PgCatalog

    from .conftest import _start, _stop, free_port

    root = tmp_path_factory.mktemp("browse-app-pg")
    url = postgres_server.create_database("browse_app_pg")
    settings = load_settings(index_dir=root / "index", log_dir=root / "logs", host="127.0.0.1", port=free_port(),
                             allow_upload=False, catalog_url=url)
    report = build_index(settings, [SAMPLE_DIR], embedder)
    assert report.failed == 0, report.failures
    catalog = PgCatalog(url)
    fill_catalog(catalog, SYNTHETIC_ROWS)
    catalog.close()
    running = _start(settings, embedder)
    yield running
    _stop(running)


def open_browser_tab(page):
    page.get_by_role("tab", name="Browse decisions").click()
    page.wait_for_selector("#b-results .browse-table", state="visible")


def table_labels(page):
    return [x.strip() for x in page.locator("#b-results tbody th a").all_inner_texts()]


def count_text(page):
    return page.inner_text("#b-results .browse-count")


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_browser_search_paging_csv_and_a_row_opens_the_viewer(browser, catalog, request, test_output):
    """Everything a person does in the decisions browser, on the embedded catalog and on PostgreSQL alike."""
    browse_app = request.getfixturevalue("browse_app" if catalog == "sqlite" else "browse_app_pg")
    page, outside = open_page(browser, browse_app.url)
    open_browser_tab(page)
    total = 5 + SYNTHETIC_ROWS
    assert f"{total} decisions match" in count_text(page) and "page 1 of 3" in count_text(page)
    assert "sorted by date, newest first" in count_text(page)
    first_page = table_labels(page)
    assert len(first_page) == 25
    headers = page.locator("#b-results thead th").all_inner_texts()
    assert [h.strip().lower() for h in headers] == ["case number", "council", "category", "outcome", "decided",
                                                    "summary"]

    # page through: next, next (the last, 15 rows), previous; pages never repeat a decision
    page.click("#b-next")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('page 2 of 3')")
    second_page = table_labels(page)
    page.click("#b-next")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('page 3 of 3')")
    third_page = table_labels(page)
    assert len(third_page) == total - 50 and page.locator("#b-next").is_disabled()
    assert len(set(first_page + second_page + third_page)) == total
    page.click("#b-prev")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('page 2 of 3')")
    assert table_labels(page) == second_page

    # words and a filter: relevance order, count, and the shared link describes the search
    page.fill("#b-text textarea, #b-text input", "rectification")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('relevance')")
    found = table_labels(page)
    assert set(found) == {"23 009 429", "24 005 748", "002_7d099216e168a9a0"}
    assert "3 decisions match" in count_text(page)
    assert page.locator("#b-results .browse-share").get_attribute("href") == "?view=browse&q=rectification"

    # the CSV export is the whole result, not the page
    page.fill("#b-text textarea, #b-text input", "")
    page.click("#b-search")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('page 1 of 3')")
    page.click("#b-export")
    page.wait_for_selector("#b-download", state="visible")
    with page.expect_download() as info:
        page.click("#b-download")
    path = test_output / f"browse-export-{catalog}.csv"
    info.value.save_as(path)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0][:5] == ["case_number", "council", "category", "outcome", "decision_date"]
    assert len(rows) == total + 1 and [r[0] or r[-1] for r in rows[1:26]] == first_page

    # keyboard: move to a row's case number and press Enter; the viewer opens with the decision
    page.get_by_role("tab", name="Browse decisions").click()
    link = page.locator("#b-results tbody th a").first
    label = link.inner_text().strip()
    link.focus()
    page.keyboard.press("Enter")
    wait_for_viewer(page, label)
    assert page.locator("#viewer .viewer-facts").is_visible()
    assert page.locator("#viewer .vpara").count() >= 1
    assert outside == [], f"the page called out to {outside}"
    page.close()


def test_row_click_opens_viewer_with_similar_decisions_and_ask_about_it(browser, app_server, test_output):
    page, outside = open_page(browser, app_server.url)
    open_browser_tab(page)
    page.locator("#b-results tbody tr", has_text="18 009 917").locator("td").first.click()  # the row, not the link
    wait_for_viewer(page, "18 009 917")
    facts = page.inner_text("#viewer .viewer-facts")
    assert "Staffordshire County Council" in facts and "Upheld" in facts and "26 Jun 2019" in facts
    # every numbered paragraph of the decision, in order, under its section
    numbers = [int(n) for n in page.locator("#viewer .vpara").evaluate_all("els => els.map(e => e.dataset.para)")]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 5
    assert page.locator("#viewer .viewer-section h3").count() >= 2
    # similar decisions: the others, each with outcome and date, and they open in the viewer too
    similar = page.locator("#viewer .similar-list li")
    items = similar.all_inner_texts()
    assert 1 <= len(items) <= 5 and not any(i.startswith("18 009 917") for i in items)
    assert any("Closed after initial enquiries" in i and "Oct 2023" in i for i in items), items  # 23 009 429
    page.click("#similar-btn")
    assert_in_view(page.locator("#vs-similar"))
    page.screenshot(path=str(test_output / "ui-viewer-similar.png"))
    with_case = page.locator("#viewer .similar-list a", has_text=re.compile(r"^\d\d \d{3} \d{3}$")).first
    nxt = with_case.inner_text().strip()
    with_case.click()
    wait_for_viewer(page, nxt)
    # "Ask about this decision": back in the chat, the question scoped to it by its case number
    page.click("#ask-about-btn")
    page.wait_for_selector("#question textarea", state="visible")
    page.wait_for_function("() => document.activeElement === document.querySelector('#question textarea')")
    assert page.input_value("#question textarea") == f"In decision {nxt}: "
    ask(page, page.input_value("#question textarea") + "what did the Ombudsman decide?")
    assert nxt in page.inner_text("#sources .src-turn.active")
    # a decision without a case number cannot be named in a question: the button says so by being disabled
    page.goto(app_server.url + "?case=002_7d099216e168a9a0")
    wait_for_viewer(page, "002_7d099216e168a9a0")
    assert page.locator("#ask-about-btn").is_disabled()
    assert outside == []
    page.close()


def test_a_case_number_in_a_declined_answers_list_opens_the_decision(browser, app_server):
    page, outside = open_page(browser, app_server.url)
    ask(page, "What did the DVLA say about my licence?")  # declined: no indexed decision mentions DVLA
    assert "may be related" in page.inner_text("#chat")
    link = page.locator("#chat a[href^='?case=']").first
    label = link.inner_text().strip()
    link.click()
    wait_for_viewer(page, label)
    assert page.locator("#viewer .vpara.cited").count() == 0  # nothing was cited from it
    assert page.url.rstrip("/") == app_server.url.rstrip("/") and outside == []
    page.close()


def test_a_listing_answer_links_to_every_decision_its_filters_select(browser, app_server):
    page, outside = open_page(browser, app_server.url)
    ask(page, "List the Hampshire County Council decisions.")
    chat = page.inner_text("#chat")
    assert "Every decision these filters select (2), newest first." in chat
    assert chat.index("24 005 748") < chat.index("20 011 198")  # 2024 before 2021
    link = page.locator("#chat a[href^='?view=browse']").last
    assert link.get_attribute("href") == "?view=browse&authority=Hampshire+County+Council"
    assert link.get_attribute("target") == "_blank"  # the chat stays; the browser opens beside it
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_selector("#b-results .browse-table", state="visible")
    assert table_labels(tab) == ["24 005 748", "20 011 198"]
    assert "council: Hampshire County Council" in count_text(tab) and outside == []
    tab.close()
    page.close()


def test_shared_links_open_a_decision_or_a_search(browser, app_server):
    # a shared link opens the viewer, not the chat: wait for the decision, not for the question box
    page, outside = open_page(browser, app_server.url + "?case=23-009-429&para=8", ready="#viewer .viewer[data-ref]")
    wait_for_viewer(page, "23 009 429")
    para = page.locator("#viewer #vp-8")
    assert "cited" in para.get_attribute("class") and "Cited" in para.text_content()
    assert_in_view(para)
    assert page.locator("#viewer .vpara.cited").count() == 1
    share = page.locator("#viewer .viewer-share").get_attribute("href")
    assert share == "?case=23-009-429&para=8"

    page.goto(app_server.url + "?view=browse&q=conference&authority=Hampshire+County+Council")
    page.wait_for_selector("#b-results .browse-table", state="visible")
    assert table_labels(page) == ["24 005 748"]
    assert page.input_value("#b-text textarea, #b-text input") == "conference"
    assert "council: Hampshire County Council" in count_text(page)

    page.goto(app_server.url + "?case=99-999-999")
    page.wait_for_selector("#viewer .viewer-placeholder", state="visible")
    assert "No decision '99-999-999' is in the index" in page.inner_text("#viewer")

    page.goto(app_server.url + "?view=browse&since=yesterday")
    page.wait_for_selector("#b-results .browse-error", state="visible")
    assert "YYYY-MM-DD" in page.inner_text("#b-results")
    assert outside == []
    page.close()


# axe-core (bundled by axe-playwright-python) in the real browser: WCAG 2.0-2.2 A and AA rules.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
               "resultTypes": ["violations"]}


def axe_problems(page) -> list[str]:
    """Serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])  # dark: staff whose system prefers it get Gradio's dark theme
def test_axe_finds_no_serious_or_critical_violation_in_any_view(browser, app_server, browse_app, test_output, scheme):
    page, outside = open_page(browser, app_server.url, color_scheme=scheme)
    assert page.evaluate("() => document.body.classList.contains('dark')") == (scheme == "dark")
    ask(page, QUESTION)
    page.wait_for_selector(MARKERS)
    # the export button is enabled with the answer: scan once its colour transition has finished, not midway
    page.wait_for_selector("#export-btn:not([disabled])")
    page.wait_for_function("() => document.getElementById('export-btn').getAnimations().length === 0")
    assert axe_problems(page) == [], "chat"

    page.locator(MARKERS).first.click()
    page.wait_for_selector("#viewer .viewer[data-ref]", state="visible")
    page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('vpara')")
    assert axe_problems(page) == [], "viewer"
    if scheme == "dark":
        page.close()
        page, outside = open_page(browser, browse_app.url, color_scheme=scheme)
        open_browser_tab(page)
        page.fill("#b-text textarea, #b-text input", "council")
        page.click("#b-search")
        page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('rel')")
        assert axe_problems(page) == [], "browser"
        page.close()
        return
    # for the README: a tall window from the top, so the header, the buttons and the marked paragraph all show
    page.set_viewport_size({"width": 1440, "height": 2150})
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(test_output / "ui-viewer.png"))
    shutil.copyfile(test_output / "ui-viewer.png", ROOT / "docs" / "viewer.png")
    page.close()

    # the browser over 65 decisions (the samples and 60 synthetic ones), so that it pages
    page, outside = open_page(browser, browse_app.url)
    open_browser_tab(page)
    page.fill("#b-text textarea, #b-text input", "council")
    page.click("#b-search")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('relevance')")
    assert axe_problems(page) == [], "browser"
    page.set_viewport_size({"width": 1440, "height": 1900})  # the whole page of 25 rows, the pager and export
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(test_output / "ui-browser.png"))
    shutil.copyfile(test_output / "ui-browser.png", ROOT / "docs" / "browser.png")
    assert outside == []
    page.close()


def test_keyboard_alone_reaches_the_tabs_the_search_and_the_viewer(browser, app_server):
    page, _ = open_page(browser, app_server.url)
    # the tab list is reachable and works with the keyboard
    tab = page.get_by_role("tab", name="Browse decisions")
    tab.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#b-results .browse-table", state="visible")
    page.focus("#b-text textarea, #b-text input")
    page.keyboard.type("disclosing address")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#b-results .browse-count').innerText.includes('1 decision')")
    # Tab onwards from the search box reaches the result's link in a sensible order, then Enter opens it
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => { const a = document.activeElement; return (a.closest('[id]') || a).id + '|' + "
                                "(a.textContent || '').trim().slice(0, 40); }")
        order.append(focused)
        if "18 009 917" in focused:
            break
    assert any("18 009 917" in f for f in order), order
    ids = [f.split("|")[0] for f in order]
    # the filters, then the buttons, then the result: the order they are read in
    assert ids.index("b-council") < ids.index("b-search") < len(ids) - 1, order
    page.keyboard.press("Enter")
    wait_for_viewer(page, "18 009 917")
    # the viewer's buttons are reachable by keyboard: Shift+Tab back from the title reaches them
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => document.activeElement.id") in ("similar-btn", "ask-about-btn", "back-btn"):
            break
    assert page.evaluate("() => document.activeElement.id") in ("similar-btn", "ask-about-btn", "back-btn")
    page.close()


def test_a_shared_link_still_opens_its_decision_after_signing_in(browser, app_index_dir, embedder, tmp_path):
    from core.settings import load_settings

    from .conftest import _start, _stop, free_port

    settings = load_settings(index_dir=app_index_dir, log_dir=tmp_path / "logs", host="127.0.0.1",
                             port=free_port(), auth_username="staff", auth_password="correct horse")
    running = _start(settings, embedder)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(running.url + "?case=23-009-429&para=8")
        page.get_by_label("username").fill("staff")
        page.get_by_label("password").fill("correct horse")
        page.keyboard.press("Enter")
        wait_for_viewer(page, "23 009 429")
        assert_in_view(page.locator("#viewer #vp-8.cited"))
        page.close()
    finally:
        _stop(running)
