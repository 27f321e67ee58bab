"""In IPython and Jupyter, a CnnvizError shows as its message, not a traceback (``%tb`` still has it).

User mistakes (a typo in a layer name, a missing file) are answered by the message, which names the
bad value and the fix; pages of library frames around it would only hide that.
"""
from __future__ import annotations

import sys
from typing import Any


_IPYTHON_SHOWS_RESULT = False  # whether this IPython displays what a custom handler returns


def _show_message(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
    """IPython custom-exception handler: the error a notebook shows is just the message."""
    lines = [f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}", "(cnnviz-widgets: %tb shows the full traceback)"]
    if not _IPYTHON_SHOWS_RESULT:
        shell._showtraceback(etype, value, lines)  # noqa: SLF001 - what ipykernel publishes as the error
    return lines


def install(errors: tuple[type[BaseException], ...]) -> bool:
    """Register the handler for ``errors`` (the package's CnnvizError: errors.py calls this, so this module imports
    nothing of the package) in the running IPython shell, if any. True when installed."""
    ipython = sys.modules.get("IPython")  # a running shell has imported it; a script need not pay for it
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    global _IPYTHON_SHOWS_RESULT
    import inspect

    try:  # IPython 8 discards the handler's return value; later versions may display it
        _IPYTHON_SHOWS_RESULT = "_showtraceback" in inspect.getsource(type(shell).set_custom_exc)
    except (OSError, TypeError):
        _IPYTHON_SHOWS_RESULT = False
    shell.set_custom_exc(errors, _show_message)
    return True
