"""HTML pages: a report is data (sections of tables and figures) rendered by one template.

A page is a :class:`Page` of :class:`Section` objects, each holding :class:`Table` and
:class:`Figure` entries and nested sections; :func:`render` turns it into HTML with the package's
jinja2 template (``templates/report.html``, autoescaping on). The page needs nothing from the
network: styles and its two small scripts are inline, figures are relative links (or ``data:``
URIs in a self-contained :class:`HTMLReport`). One script marks every figure that failed to load
(``data-images-broken`` on ``<body>``, and a visible note), another records script errors
(``data-js-errors``) — a copied folder missing its figures says so.
"""

from __future__ import annotations

import base64
import os
import tempfile
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

from bidsmask._version import __version__


@dataclass
class Figure:
    """A figure: its link (relative path or ``data:`` URI) and its caption."""

    src: str
    caption: str


@dataclass
class Table:
    """A table: column names and rows of cells (``None`` shown as ``n/a``)."""

    columns: list[str]
    rows: list[list]
    sortable: bool = False

    def __post_init__(self) -> None:
        self.rows = [
            ["n/a" if _missing(cell) else _format(cell) for cell in row] for row in self.rows
        ]


@dataclass
class Section:
    """A section of a page: heading, anchor, entities it belongs to, notes, tables, figures."""

    heading: str
    anchor: str = ""
    entities: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anchor = self.anchor or "".join(c if c.isalnum() else "-" for c in self.heading)


@dataclass
class Page:
    """A whole page: its title, sections, paragraphs of introduction and links (href, text)."""

    title: str
    sections: list[Section]
    intro: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    version: str = __version__


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bidsmask.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(page: Page) -> str:
    """Return a page's HTML (one file; figures are the links the page's sections give)."""
    return _environment().get_template("report.html").render(page=page)


def data_uri(content: bytes, fmt: str) -> str:
    """Return figure bytes (``svg`` or ``png``) as a ``data:`` URI, for self-contained pages."""
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


class HTMLReport:
    """A self-contained HTML report (figures embedded), as nilearn's ``generate_report`` gives.

    Shows itself in a notebook (``_repr_html_``), saves itself (:meth:`save_as_html`) or opens in
    the default browser (:meth:`open_in_browser`).
    """

    def __init__(self, page: Page):
        self.page = page
        self.html = render(page)

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html

    def save_as_html(self, file_path: str | os.PathLike) -> None:
        """Write the report to ``file_path`` (one HTML file)."""
        Path(file_path).write_text(self.html, encoding="utf-8")

    def open_in_browser(self) -> Path:
        """Save the report in a temporary file, open it in the default browser, return the file."""
        handle, name = tempfile.mkstemp(prefix="bidsmask-report-", suffix=".html")
        os.close(handle)
        self.save_as_html(name)
        webbrowser.open(Path(name).as_uri())
        return Path(name)
