"""The explain page in a real browser: headless Chromium against the real server.

The browser types a review into the page, clicks Explain, and the test reads the highlighted
DOM: every token of the review shaded, its text the review's own characters, its shade's
colour following the sign of its attribution, and nothing blocked by the page's CSP. A
screenshot goes to the test's folder, and to ``SENTIMENT_TEST_SCREENSHOT`` when set (how
``docs/explain.png`` is made, with ``SENTIMENT_TEST_EXPLAIN_MODEL=models/default``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.browser import Browser, ensure_chromium
from tests.integration.server import Server, running_server

REVIEW = (
    "A wonderful, moving film. The actors were brilliant!<br /><br />"
    "But the plot was dull and the ending boring."
)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Return the Chromium binary, installing it when possible; skip saying why otherwise."""
    binary, reason = ensure_chromium()
    if binary is None:
        pytest.skip(f"browser test needs Chromium: {reason}")
    return binary


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server (one worker) over the tiny bundle, or the model named by the env."""
    model = Path(os.environ.get("SENTIMENT_TEST_EXPLAIN_MODEL", tiny_bundle))
    with running_server(model, tmp_path_factory.mktemp("explain-page"), workers="1") as running:
        yield running


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    """Return a fresh headless Chromium (new profile) with one page."""
    opened = Browser(chromium)
    try:
        opened.page("Page.enable")
        opened.page("Runtime.enable")
        yield opened
    finally:
        opened.close()


def test_the_page_highlights_the_review(server: Server, browser: Browser, tmp_path: Path) -> None:
    browser.page("Page.navigate", url=f"{server.url}/")
    browser.wait_for("document.readyState === 'complete' && !!document.getElementById('form')")
    browser.evaluate("document.getElementById('text').focus()")
    browser.page("Input.insertText", text=REVIEW)  # typed, as keyboard input
    browser.click("#submit")
    state = browser.wait_for("document.body.dataset.state", timeout=60)
    assert state == "done", browser.evaluate("document.getElementById('status').textContent")

    shown = browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('#highlighted .token')].map(s => ({"
        "text: s.textContent, attribution: parseFloat(s.dataset.attribution),"
        "colour: getComputedStyle(s).backgroundColor})))"
    )
    tokens = json.loads(shown)
    highlighted = browser.evaluate("document.getElementById('highlighted').textContent")
    label = browser.evaluate("document.getElementById('label').textContent")

    assert highlighted == REVIEW  # the original text, breaks and punctuation included
    words = [token["text"] for token in tokens]
    assert words[:4] == ["A", "wonderful", ",", "moving"]
    assert "br" not in words  # HTML breaks are not tokens
    assert label in {"negative", "positive"}
    for token in tokens:
        red, green = (int(part) for part in token["colour"].split("(")[1].split(",")[:2])
        if token["attribution"] > 0.005:
            assert green > red, token
        elif token["attribution"] < -0.005:
            assert red > green, token
    assert any(abs(token["attribution"]) > 0 for token in tokens)
    assert browser.evaluate("document.querySelectorAll('.legend .swatch').length") == 3

    browser.screenshot(tmp_path / "explain.png")
    target = os.environ.get("SENTIMENT_TEST_SCREENSHOT")
    if target:
        browser.screenshot(Path(target))
