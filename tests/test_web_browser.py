"""The search page in a real browser: Debian's Chromium driven by Playwright (never a
downloaded browser) against `vibes serve` as a real process over a real MiniLM
collection. A user types a query, reads the results, asks a question (of a local server
that answers like OpenAI's chat API), opens a row and its similar items; a hostile
item's text shows as text and runs nothing. The search page's screenshot is
kept in $VIBES_TEST_ARTIFACTS (default: test-artifacts/)."""

from __future__ import annotations

import io
import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from checks import serving

import vibes

ARTIFACTS = Path(
    os.environ.get("VIBES_TEST_ARTIFACTS") or Path(__file__).parent.parent / "test-artifacts"
)

HOSTILE = '<script>window.hacked = 1</script><img src=x onerror="window.hacked = 2"> cats'

NOTES = [
    ("cat-nap", "The cat sleeps on the sofa all afternoon", {"topic": "pets"}),
    ("dog-walk", "Walking the dog in the park every morning", {"topic": "pets"}),
    ("kitten", "A kitten chasing a ball of wool", {"topic": "pets"}),
    ("tax", "How to file your tax return before the deadline", {"topic": "money"}),
    ("budget", "Keeping a monthly household budget", {"topic": "money"}),
    ("bread", "Baking sourdough bread with a starter", {"topic": "food"}),
    ("soup", "A warming winter soup with lentils", {"topic": "food"}),
    ("hostile", HOSTILE, {"topic": "<b>bold</b>"}),
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the browser test needs Chromium: apt-get install chromium"
    return found


@pytest.fixture
def served(db_path, minilm, test_plugin) -> Iterator[str]:
    notes = vibes.Database(db_path).collection("notes", "minilm")
    notes.embed_multi(NOTES, store=True)
    notes.build_fulltext()
    photos = vibes.Database(db_path).collection("photos", "hash")
    for name, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        photos.embed(f"{name}.png", png(color), metadata={"color": name}, store=True)
    with serving(db_path) as start:
        yield start.rsplit("/-/", 1)[0]


def png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", (120, 80), color).save(output, "PNG")
    return output.getvalue()


def api(base: str, collection: str, **params: Any) -> list[dict]:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{base}/-/vibes/{collection}/search.json?{query}") as response:
        return json.loads(response.read())


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.mark.slow
def test_a_user_searches_opens_a_row_and_nothing_hostile_runs(fake_llm, served, browser, db_path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{served}/-/vibes/notes")
    page.fill("input[name=q]", "a sleepy kitty")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".vibes-hit")
    shown = page.locator(".vibes-results .vibes-id").all_text_contents()
    assert shown == [hit["id"] for hit in api(served, "notes", q="a sleepy kitty")]
    assert shown[0] in ("cat-nap", "kitten")
    scores = page.locator(".vibes-results .vibes-score").all_text_contents()
    assert [float(score) for score in scores] == sorted(map(float, scores), reverse=True)
    # The hostile item is on the page as its text, and nothing of it ran.
    texts = page.locator(".vibes-text").all_text_contents()
    assert HOSTILE in texts
    assert "topic<b>bold</b>" in page.locator(".vibes-meta").all_text_contents()
    assert page.evaluate("window.hacked") is None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)

    # Words mode marks the query's words.
    page.select_option("select[name=mode]", "text")
    page.fill("input[name=q]", "bread starter")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".vibes-text mark")
    assert page.locator(".vibes-results .vibes-id").first.text_content() == "bread"
    assert {m.lower() for m in page.locator("mark").all_text_contents()} == {"bread", "starter"}

    # A filter narrows the results.
    page.select_option("select[name=mode]", "vector")
    page.fill("input[name=q]", "animals")
    page.locator("input[name=filter]").last.fill("topic=money")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".vibes-hit")
    assert set(page.locator(".vibes-results .vibes-id").all_text_contents()) == {"tax", "budget"}

    # Ask: the answer's citations lead to its numbered sources.
    page.locator("input[name=filter]").first.fill("")
    page.fill("input[name=q]", "cats and kittens")
    page.click("button[name=ask]")
    # Streamed: the answer grows as the model writes, then its citations become links.
    page.wait_for_selector(".vibes-answer[data-done]")
    assert page.locator(".vibes-answer > .vibes-text").text_content().startswith("Answer from [")
    assert "ask=1" in page.url  # the address asks again, without the script
    citation = page.locator(".vibes-answer > .vibes-text a").first
    number = citation.text_content().strip("[]")
    citation.click()
    assert page.url.endswith(f"#source-{number}")
    assert page.locator(f"#source-{number} .vibes-id").is_visible()
    assert "cited" in page.locator(f"#source-{number} .vibes-score").text_content()

    # Open a row: Datasette's row page, with the item's similar items.
    page.goto(f"{served}/-/vibes/notes?q=kitten+playing")
    page.locator(".vibes-results .vibes-id").first.click()
    page.wait_for_selector(".vibes-similar li")
    assert "/embeddings/" in page.url
    opened = page.url.rsplit(",", 1)[1]
    similar = [link.text_content() for link in page.locator(".vibes-similar li > a").all()]
    expected = vibes.Database(db_path).collection("notes").similar_by_id(opened, 10)
    assert similar == [match.id for match in expected]

    # The hostile item's own row page: its text in the table and the panel, run by none.
    page.goto(f"{served}/test/embeddings/1,hostile")
    page.wait_for_selector(".vibes-similar li")
    assert page.evaluate("window.hacked") is None
    assert dialogs == [] and errors == []


@pytest.mark.slow
def test_image_results_show_as_thumbnails(served, browser):
    page = browser.new_page()
    page.goto(f"{served}/-/vibes/photos?id=red.png")
    page.wait_for_selector(".vibes-hit img")
    # Thumbnails load lazily: wait until the browser has decoded them.
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")
    loaded = page.evaluate(
        "Array.from(document.querySelectorAll('.vibes-hit img'))"
        ".map(img => [img.alt, img.complete && img.naturalWidth])"
    )
    assert loaded == [["blue.png", 120]]
