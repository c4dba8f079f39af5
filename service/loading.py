"""Loading a model without blocking the worker: what the runtime and the model process share."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def start_loading(
    load: Callable[[], None], *, on_error: Callable[[Exception], None], background: bool = True
) -> None:
    """Run ``load`` in a daemon thread (so probes and gunicorn's heartbeat go on meanwhile),
    or here when not ``background``; an exception is logged and goes to ``on_error``."""

    def run() -> None:
        try:
            load()
        except Exception as exc:  # the reason must reach the log, then the worker stops
            log.critical("cannot serve the model: %s", exc)
            on_error(exc)

    if background:
        threading.Thread(target=run, name="model-loader", daemon=True).start()
    else:
        run()
