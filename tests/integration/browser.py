"""Headless Chromium driven over the DevTools protocol on a pipe: no driver, no Python package.

``--remote-debugging-pipe`` makes Chromium read DevTools commands (JSON, each ending in a NUL
byte) on its file descriptor 3 and answer on 4, so a test needs nothing but the browser.
``ensure_chromium`` installs the Debian package when it is missing and we are root (a clean
CI machine), and otherwise says why the browser tests cannot run.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace sandbox to offer
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
    "--window-size=1000,760",
)


def find_chromium() -> str | None:
    """Return the path of a Chromium binary, if one is installed."""
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def ensure_chromium() -> tuple[str | None, str]:
    """Return (binary, "") or (None, why not): installs Debian's chromium when root."""
    found = find_chromium()
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "no Chromium, and not root on a Debian/Ubuntu machine to apt-get it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            command, check=False, env=env, capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            return None, f"{' '.join(command)} failed: {done.stderr[-500:]}"
    found = find_chromium()
    return (found, "") if found else (None, "apt-get installed chromium but no binary found")


def _above_ten(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium with one page; ``call`` sends a DevTools command to it."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - Chromium's stderr, kept open
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()
        # bash moves the pipe ends onto descriptors 3 and 4 (no preexec_fn in Python); from
        # 10 up first, so that one redirection never overwrites the other's source (dash
        # refuses descriptors above 9, bash does not).
        to_browser, from_browser = (_above_ten(fd) for fd in (to_browser, from_browser))
        self.process = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}',
                binary,
                *FLAGS,
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command (to the page when ``session`` is given) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                self._log.seek(0)
                output = self._log.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"Chromium closed the DevTools pipe:\n{output}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command to the page."""
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str) -> Any:
        """Return the JSON value of a JavaScript expression in the page."""
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"{expression!r} still false after {timeout} s")

    def click(self, selector: str) -> None:
        """Click the middle of an element with real mouse events."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.page(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the page."""
        data = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        with contextlib.suppress(RuntimeError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._log.close()
        self._profile.cleanup()
