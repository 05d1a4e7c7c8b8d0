"""Check the built book in a real browser: every page loads, every image renders, no JavaScript error, no broken
internal link; save screenshots of the index and of the first page of each paper.

Usage: python tools/book_check.py [_build/html] [--screenshots _build/screenshots]

The pages are served from 127.0.0.1 by a local HTTP server and opened in headless Chromium through chromedriver
(Debian's ``chromium`` and ``chromium-driver``). Resources on other hosts (fonts, MathJax, Thebe from a CDN) cannot
load on an offline machine: such failures are listed, not counted, since the published site reaches them.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

SKIP = ("genindex.html", "search.html", "py-modindex.html")
PAPERS = ("bonheme2022", "bonheme2023", "peste2017", "jamroz2020", "nash2019")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if tag in ("a", "img", "script", "link", "iframe") and a.get(key):
                self.links.append(a[key])


def broken_links(html_root: Path) -> list[str]:
    """Internal links (href/src) of every page that point at a file that does not exist."""
    bad = []
    for page in sorted(html_root.rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for link in parser.links:
            u = urlparse(link)
            if u.scheme or u.netloc or link.startswith(("#", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append(f"{page.relative_to(html_root)} -> {link}")
    return bad


def pages_to_check(html_root: Path) -> list[Path]:
    out = []
    for page in sorted(html_root.rglob("*.html")):
        rel = page.relative_to(html_root)
        if rel.parts[0].startswith("_") or rel.name in SKIP:
            continue
        out.append(rel)
    return out


def _serve(html_root: Path):
    handler = functools.partial(_QuietHandler, directory=str(html_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _which(env: str, *names: str) -> str:
    """The browser or driver named by environment variable ``env``, else the first of ``names`` on PATH."""
    import os

    found = os.environ.get(env) or next((p for p in map(shutil.which, names) if p), None)
    if not found:
        raise FileNotFoundError(f"none of {names} is installed (or set {env}); on Debian: "
                                "apt-get install chromium chromium-driver")
    return found


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _which("CHROME_BIN", "chromium", "chromium-browser", "google-chrome")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=_which("CHROMEDRIVER", "chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(60)
    return driver


_BROKEN_IMAGES = """
return Array.from(document.images)
  .filter(i => i.src.startsWith(location.origin) && !(i.complete && i.naturalWidth > 0))
  .map(i => i.src);
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", nargs="?", default="_build/html")
    ap.add_argument("--screenshots", default="_build/screenshots")
    args = ap.parse_args(argv)
    html_root = Path(args.html).resolve()
    if not (html_root / "index.html").is_file():
        print(f"book-check: {html_root}/index.html does not exist: run `make book` first", file=sys.stderr)
        return 2
    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)
    problems = [f"broken link: {b}" for b in broken_links(html_root)]
    server = _serve(html_root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    pages = pages_to_check(html_root)
    offline_notes = set()
    want_shots = {"index.html": "index.png"}
    for paper in PAPERS:
        firsts = sorted(p for p in pages if p.parts[:2] == ("notebooks", paper))
        if firsts:
            want_shots[firsts[0].as_posix()] = f"{paper}.png"
    driver = _driver()
    try:
        for rel in [Path("index.html")] + pages:
            url = base + rel.as_posix()
            driver.get(url)
            if "404" in driver.title or not driver.title:
                problems.append(f"{rel}: page did not load (title {driver.title!r})")
                continue
            for src in driver.execute_script(_BROKEN_IMAGES):
                problems.append(f"{rel}: image does not render: {src}")
            for entry in driver.get_log("browser"):
                if entry["level"] != "SEVERE":
                    continue
                msg = entry["message"]
                if "/favicon.ico" in msg.split(" ")[0]:
                    continue  # the browser asks for it on its own; no page links it
                if "127.0.0.1" not in msg.split(" ")[0] and ("Failed to load resource" in msg
                                                              or "net::ERR" in msg):
                    offline_notes.add(msg.split(" ")[0])
                    continue
                problems.append(f"{rel}: JavaScript error: {msg}")
            if rel.as_posix() in want_shots:
                # The whole page, figures included: grow the window to the page's height for the shot.
                height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 16000)
                driver.set_window_size(1280, max(height, 800))
                driver.save_screenshot(str(shots / want_shots[rel.as_posix()]))
                driver.set_window_size(1280, 1600)
    finally:
        driver.quit()
        server.shutdown()
    print(f"book-check: {len(pages) + 1} pages opened in headless Chromium, "
          f"{len(want_shots)} screenshots in {shots}")
    if offline_notes:
        print(f"book-check: {len(offline_notes)} external resources could not load offline (not counted), e.g. "
              + ", ".join(sorted(offline_notes)[:3]))
    for p in problems:
        print(f"book-check: FAIL {p}", file=sys.stderr)
    if problems:
        return 1
    print("book-check: every page loads, every image renders, no JavaScript error, no broken internal link")
    return 0


if __name__ == "__main__":
    sys.exit(main())
