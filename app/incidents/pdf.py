"""HTML to PDF with WeasyPrint, fetching nothing but our own print stylesheet.

The document HTML is the same one the retrospective page shows (report text escaped by
Jinja, the lead's Markdown rendered safely by app.incidents.markdown), so a hostile report
cannot add markup. As defence in depth the renderer gets a URL fetcher that answers one
URL only, the print stylesheet, from the bytes of the file we ship; any other URL (an
image, a font, a file:// path, http://…) is refused and recorded, and WeasyPrint goes on
without it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

PRINT_CSS_NAME = "retrospective-print.css"
# The href the document uses for the stylesheet when it is rendered for the PDF. A real
# file: URL (WeasyPrint resolves it happily), but only this exact string is answered,
# and from the bytes read once below, never by opening what a URL names.
PRINT_CSS_URL = "file:///flagdesk/static/" + PRINT_CSS_NAME
_STATIC = Path(__file__).resolve().parent.parent / "static"


@lru_cache(maxsize=1)
def print_css() -> bytes:
    """The print stylesheet as shipped (read once per process)."""
    return (_STATIC / PRINT_CSS_NAME).read_bytes()


def _fetcher_class():  # noqa: ANN202
    # WeasyPrint is imported on first use: it loads Pango, and nothing is built at import.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class OnlyThePrintStylesheet(URLFetcher):
        """Answers PRINT_CSS_URL with the shipped stylesheet; refuses everything else."""

        def __init__(self) -> None:
            super().__init__(timeout=1, allowed_protocols=(), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
            if url == PRINT_CSS_URL:
                return URLFetcherResponse(
                    url, body=print_css(), headers={"Content-Type": "text/css; charset=utf-8"})
            self.refused.append(url)
            raise PermissionError(f"the PDF renderer fetches nothing: {url[:200]}")

    return OnlyThePrintStylesheet


def url_fetcher():  # noqa: ANN201
    """A fresh fetcher (it records the URLs it refused in `.refused`)."""
    return _fetcher_class()()


class _Quiet(logging.Filter):
    """WeasyPrint logs each refused URL as an error; the refusal is the point, so those
    lines are dropped (the fetcher keeps the list)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "the PDF renderer fetches nothing" not in message


def html_to_pdf(html: str, *, fetcher=None) -> bytes:  # noqa: ANN001
    """Render one standalone HTML document (its stylesheet linked as PRINT_CSS_URL)."""
    from weasyprint import HTML

    fetcher = fetcher if fetcher is not None else url_fetcher()
    logger = logging.getLogger("weasyprint")
    quiet = _Quiet()
    logger.addFilter(quiet)
    try:
        # No base_url: a relative URL resolves to nothing instead of to a path on disk.
        return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    finally:
        logger.removeFilter(quiet)
