"""The servers the browser tests drive, started one way: JupyterLab on a folder of notebooks and marimo on an app;
and what a person does in JupyterLab: open a notebook, run all, switch the theme, save."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
from conftest import THREADS

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

# JupyterLab restores the notebooks a workspace had open as hidden tabs; each page starts a fresh one
RESET = {"/lab/tree/": "?reset"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells at ``path``, with the Python kernel named."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = KERNELSPEC
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@contextlib.contextmanager
def serving(args: list[str], root: Path, env: dict[str, str], ready: str, what: str,
            timeout: float = 90) -> Iterator[subprocess.Popen]:
    """A server process (``python -m ...args``) run in ``root`` until ``ready`` (a URL) answers; stopped on exit,
    whatever happened. Its output goes to ``root``/server.log, which a failure to start quotes."""
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(ready, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{what} did not start:\n" + log_path.read_text(errors="replace")[-4000:])
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def lab_server(root: Path, **env: str) -> Iterator[str]:
    """JupyterLab on ``root`` (its own settings there, this checkout importable, two threads per kernel, an empty
    TORCH_HOME unless ``env`` says otherwise: offline, so random weights, as on CI); yields its URL. The app is
    exposed in the page (``window.jupyterapp``) so a test can save a notebook as the menu would."""
    (root / "empty.ipynb").exists() or write_notebook(root / "empty.ipynb", ["1 + 1"])
    port = free_port()
    environ = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter"), OMP_NUM_THREADS=str(THREADS),
                   TORCH_HOME=str(root / ".torch"),
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    environ.update(env)
    url = f"http://127.0.0.1:{port}"
    args = ["jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
            "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with serving(args, root, environ, url + "/api", "jupyter lab"):
        yield url


@contextlib.contextmanager
def marimo_server(app: Path, mode: str = "run") -> Iterator[str]:
    """``marimo run|edit app --headless`` with its home, settings and caches in the app's folder and this checkout
    importable; yields its URL."""
    home = app.parent
    port = free_port()
    environ = dict(os.environ, OMP_NUM_THREADS=str(THREADS), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   MARIMO_SKIP_UPDATE_CHECK="1",
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    args = ["marimo", mode, str(app), "--headless", "--host", "127.0.0.1", "--port", str(port), "--no-token"]
    if mode == "edit":
        args.append("--skip-update-check")
    url = f"http://127.0.0.1:{port}"
    with serving(args, home, environ, url, f"marimo {mode}"):
        yield url


def run_all(page, ui: str = "lab") -> None:
    """Run every cell through the menu, as a person would (the same menu in Lab and Notebook 7)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"http {r.status}: {r.url.split('?')[0]}") if r.status >= 400 else None)
    return errors


_BASELINES: dict[tuple[str, str], set[str]] = {}


def baseline_errors(browser, server: str, prefix: str) -> set[str]:
    """What the UI itself reports on an empty notebook (Notebook 7 raises one of its own): looked at once per
    server and UI (an empty page and 4 s each time)."""
    if (server, prefix) not in _BASELINES:
        _BASELINES[server, prefix] = _baseline_errors(browser, server, prefix)
    return _BASELINES[server, prefix]


def _baseline_errors(browser, server: str, prefix: str) -> set[str]:
    page = browser.new_page()
    errors = collect_errors(page)
    page.goto(server + prefix + "empty.ipynb" + RESET.get(prefix, ""))
    page.wait_for_selector(".jp-Notebook:visible", timeout=60_000)
    page.wait_for_timeout(4000)
    page.close()
    return {e.split(" for comm id")[0] for e in errors}


def open_and_run(browser, server: str, notebook: str, viewport: dict, init_script: str | None = None):
    """A fresh JupyterLab page on ``notebook`` with every cell run; its error log and the UI's own errors."""
    known = baseline_errors(browser, server, "/lab/tree/")
    page = browser.new_page(viewport=viewport)
    if init_script:
        page.add_init_script(init_script)
    errors = collect_errors(page)
    page.goto(server + "/lab/tree/" + notebook + RESET["/lab/tree/"])
    page.wait_for_selector(".jp-Notebook:visible", timeout=60_000)
    page.wait_for_timeout(1500)  # the kernel starts
    run_all(page, "lab")
    news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's "get news?" toast
    if news.count():
        news.first.click()
    return page, errors, known


# what every widget on a page shows: its data-* markers, its message and its busy line (and whether the page took
# its kernel for gone), for a wait that timed out: a CI log keeps the failure's one-line summary, not the page
WIDGETS_SHOWN = """() => [...document.querySelectorAll('.cnnviz, .cnnviz-rf, [data-ready]')].map(r => ({
    label: r.getAttribute('aria-label') || r.className, ...r.dataset,
    error: (r.querySelector('.cnnviz-error') || {}).textContent || '', busy: (r.querySelector('.cnnviz-busy') || {}).textContent || '',
    disconnected: !!r.closest('.jupyter-widgets-disconnected') }))"""


def wait_for(page, condition: str, step: str, timeout: int = 60_000, arg=None) -> None:
    """``page.wait_for_function(condition)``, whose timeout names ``step`` and what the widgets showed then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        try:
            shown = json.dumps(page.evaluate(WIDGETS_SHOWN))
        except Exception as exc:  # noqa: BLE001 - the page itself may be gone
            shown = f"(the page could not say: {exc})"
        raise AssertionError(f"{step}: not so after {timeout // 1000} s; the widgets showed {shown[:3000]}") from None


def set_theme(page, name: str) -> None:
    """Settings > Theme > ``name``, as a person switches it; waits until the page wears it."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    light = name == "JupyterLab Light"
    page.wait_for_function("l => document.body.dataset.jpThemeLight === String(l)", arg=light, timeout=30_000)
    page.wait_for_timeout(800)


def wait_until_run(page, code_cells: int, timeout: int = 420_000) -> None:
    """Every code cell has run (a number in its prompt), and every widget has drawn or said why not."""
    wait_for(page, """n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
        return p.length >= n && p.every(t => /\\[\\d+\\]/.test(t)); }""", step=f"every one of {code_cells} code cells run",
             arg=code_cells, timeout=timeout)
    wait_for(page, """() => [...document.querySelectorAll('.cnnviz')].every(r => (r.dataset.ready === '1' || r.dataset.error === '1')
        && r.getAttribute('aria-busy') !== 'true')""", step="every widget drawn (or saying why not), none busy", timeout=timeout)
    page.wait_for_timeout(1500)


def kernel_of(server: str, notebook: str) -> dict:
    """The running session of ``notebook`` (its path under the server's root), from the server's REST API."""
    sessions = json.loads(urllib.request.urlopen(server + "/api/sessions", timeout=10).read())
    found = [s for s in sessions if s.get("path") == notebook]
    assert found, f"no kernel runs {notebook}: sessions {[s.get('path') for s in sessions]}"
    return found[0]


def kernel_peak_gib(kernel_id: str) -> float:
    """The kernel's own high-water mark of resident memory (VmHWM), read from outside it: the process whose
    command line names its connection file."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if any(f"kernel-{kernel_id}.json" in part for part in (proc.info["cmdline"] or [])):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 2**20
    raise AssertionError(f"no process runs kernel {kernel_id}")


def shut_down(server: str, session: dict) -> None:
    """End a notebook's session and its kernel (a server running many notebooks would hold every kernel)."""
    req = urllib.request.Request(f"{server}/api/sessions/{session['id']}", method="DELETE")
    urllib.request.urlopen(req, timeout=30)


def save_and_read(page, root: Path, notebook: str, timeout: float = 60) -> nbformat.NotebookNode:
    """Save the open notebook as File > Save would, and read what was written (its outputs as Lab shows them)."""
    path = root / notebook
    before = path.stat().st_mtime_ns
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    deadline = time.time() + timeout
    while path.stat().st_mtime_ns == before:
        assert time.time() < deadline, f"JupyterLab did not save {notebook}"
        time.sleep(0.2)
    time.sleep(0.3)  # written then renamed into place: let the write settle
    return nbformat.read(path, as_version=4)
