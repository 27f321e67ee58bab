"""The widgets' front-end files: each widget's ES module joined with what it imports of ``_shared.js`` (one file
per widget, as anywidget loads it), and the shared stylesheet."""
from __future__ import annotations

import re
from pathlib import Path


def js_path(name: str) -> Path:
    """A file of js/ as shipped in the wheel (cnnviz_widgets/js) or in a source checkout (js/)."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here / "js", here.parent / "js"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"widget module {name} is missing from {here / 'js'}; reinstall cnnviz-widgets")

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./_shared\.js";[ \t]*$', re.M)

_TOP_LEVEL = re.compile(r"^(?:export\s+)?(?:const|let|var|function|class)\s+(\w+)", re.M)


def esm(name: str) -> str:
    """One self-contained ES module for anywidget: js/_shared.js, then the widget's own js/``name`` without its
    ``import {...} from "./_shared.js"`` line.

    The files are real modules (a type checker, a linter and Node read each on its own), but anywidget imports
    a module from a Blob URL, where a relative import cannot resolve: joining the two in one scope resolves it,
    with no build step and no Node at install or run time. A name imported that the shared module does not
    export, any other import, or a widget name that would clash with a shared one is an error here, where a
    test sees it, rather than a blank widget.
    """
    shared = js_path("_shared.js").read_text(encoding="utf-8")
    own = js_path(name).read_text(encoding="utf-8")
    exported = set(re.findall(r"^export\s+(?:const|let|function|class)\s+(\w+)", shared, re.M))
    imported = {n.strip() for names in _IMPORT.findall(own) for n in names.split(",") if n.strip()}
    body = _IMPORT.sub("", own)
    problems = [f"imports {sorted(imported - exported)} that _shared.js does not export"] if imported - exported else []
    if re.search(r"^\s*import[\s{*\"']", body, re.M):
        problems.append("imports something other than ./_shared.js, which cannot be joined")
    clash = set(_TOP_LEVEL.findall(body)) & set(_TOP_LEVEL.findall(shared))
    if clash:
        problems.append(f"declares {sorted(clash)}, which _shared.js declares too")
    if problems:
        raise RuntimeError(f"js/{name} {'; '.join(problems)}.")
    return shared + "\n" + body


def css() -> str:
    """js/cnnviz.css: every widget's styles, which anywidget puts where the widget lives (the page's head in
    JupyterLab, the widget's shadow root in marimo)."""
    return js_path("cnnviz.css").read_text(encoding="utf-8")
