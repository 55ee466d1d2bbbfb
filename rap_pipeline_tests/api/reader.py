"""The path a reader takes through the web page, in a real headless browser (the system
Chromium driven by Playwright): shared by the page tests and the test after `make run`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

QUERY = "songs about losing a brother"


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium; without one the test is skipped with how to install it (failed
    where RAP_REQUIRE_TOOLS is set, as in CI)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "no Chromium installed: apt-get install chromium (.ci/run does)"
        if os.environ.get("RAP_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


def search_open_a_track_and_follow_a_similar_one(browser, base_url: str) -> None:
    """At a phone's width, with the keyboard: search, open the first result and see its
    analyses, then follow a similar track."""
    page = browser.new_page(viewport={"width": 375, "height": 800})
    opened = page.goto(base_url + "/")
    assert opened is not None and opened.ok, (
        f"/ answered {opened and opened.status}: {page.content()[:300]}"
    )
    page.keyboard.press("/")  # the keyboard shortcut focuses the search box
    page.keyboard.type(QUERY)
    with page.expect_navigation():  # the form is sent: a server-rendered results page
        page.keyboard.press("Enter")
    if page.locator("ol.results li").count() == 0:  # say what the reader saw instead
        raise AssertionError(f"no results at {page.url}: {page.inner_text('body')[:500]}")
    first = page.locator("ol.results li a.result-title").first
    assert first.inner_text() == "Letter to My Brother"
    assert page.locator("ol.results mark").count() > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll

    first.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "Letter to My Brother"
    assert page.locator("section.analysis h3").count() >= 2  # rule_based and emotion
    excerpt = page.locator("blockquote.lines").inner_text()
    assert 0 < len(excerpt.splitlines()) <= 4

    similar = page.locator("ol.similar li a").first
    title = similar.inner_text()
    similar.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == title != "Letter to My Brother"
    page.close()
