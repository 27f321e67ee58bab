"""mkdocs hook: links between notebooks and pages, written for Jupyter, also work on the site.

A lesson links ``glossary.md#patch`` so that the link opens the file beside it in JupyterLab; mkdocs-jupyter
leaves such links in a notebook's page as they are, where they point inside the notebook's own folder URL.
Relative links to ``.md`` and ``.ipynb`` files in a notebook page are rewritten to the pages they name
(``../glossary/#patch``); mkdocs checks and rewrites the links of Markdown pages itself.
"""
from __future__ import annotations

import re

LINK = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#]+?)\.(?:md|ipynb)(#[^"]*)?"')


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.endswith(".ipynb") or not config.get("use_directory_urls", True):
        return html
    return LINK.sub(lambda m: f'href="../{m.group(1)}/{m.group(2) or ""}"', html)
