"""Take the README's screenshot of the search page: `vibes serve DB` on a free port, and
Debian's Chromium (driven by Playwright) searching one of its collections.

    python examples/screenshot_search_page.py DB COLLECTION QUERY [OUTPUT.png]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.parse

from playwright.sync_api import sync_playwright


def main() -> None:
    database, collection, query = sys.argv[1:4]
    output = sys.argv[4] if len(sys.argv) > 4 else "docs/images/search-page.png"
    server = subprocess.Popen(
        [sys.executable, "-m", "vibes", "serve", database, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.search(r"at (http://[^/\s]+)", line)
        if found is None:
            raise SystemExit(f"vibes serve said: {line}")
        page_url = (
            f"{found.group(1)}/-/vibes/{urllib.parse.quote(collection, safe='')}?"
            + urllib.parse.urlencode({"q": query, "n": 6})
        )
        browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=browser_path, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(page_url)
            page.wait_for_selector(".vibes-hit")
            page.screenshot(path=output, full_page=True)
            browser.close()
        print(f"{output}: {page_url}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
