"""A headless Chromium driven over the DevTools protocol, to look at the built site as a reader would.

    python tools/chromium.py build/site/index.html shot.png     (a screenshot of one page)

Chromium talks to us over a pair of pipes (``--remote-debugging-pipe``: it reads commands on its file
descriptor 3 and writes answers and events on 4, each a JSON message ending in a NUL byte), so no port
is opened and no Python package beyond the standard library is needed. ``find_or_install`` finds
Debian's ``chromium`` and, when it is missing and we are root, installs it with apt-get.
"""
from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PACKAGES = ("chromium", "fonts-liberation")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run")


def find() -> str | None:
    """The path of a Chromium (or Chrome) on PATH, or None."""
    return next((path for path in map(shutil.which, NAMES) if path), None)


def find_or_install() -> str:
    """The path of Chromium; installs Debian's ``chromium`` with apt-get first if it is missing and we are root.

    Raises RuntimeError, saying what to do, when it is missing and cannot be installed.
    """
    found = find()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("Chromium is needed to test the site and is not installed; install Debian's package "
                           "with `sudo apt-get install chromium` (or put chromium on PATH) and run again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
    log = []
    for command in (install, ["apt-get", "update", "-q"], install):  # the package lists may be missing or old
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        log.append(f"$ {' '.join(command)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        if command is install and result.returncode == 0 and find():
            return find()
    raise RuntimeError("Chromium is needed to test the site, and installing it with apt-get failed:\n" + "\n".join(log))


class Browser:
    """One headless Chromium with one page (tab); use as a context manager.

    ``call(method, **params)`` sends a DevTools command to the page and returns its result; ``events``
    holds every event received, as (method, params).
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 1000, timeout: float = 60):
        self.timeout = timeout
        self.events: list[tuple[str, dict]] = []
        self._ids = itertools.count(1)
        self._answers: dict[int, dict] = {}
        self._arrived = threading.Condition()
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_on_3_and_4():
            # Move both ends above 4 first, so that placing one cannot overwrite the other.
            r, w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.close(r)
            os.close(w)

        command = [executable or find_or_install(), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                   f"--window-size={width},{height}", "--hide-scrollbars", "--mute-audio", "about:blank"]
        self.process = subprocess.Popen(command, preexec_fn=pipes_on_3_and_4, close_fds=False,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                with self._arrived:
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append((message["method"], message.get("params", {})))
                    self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def _send(self, method: str, params: dict, session: str | None = None) -> dict:
        number = next(self._ids)
        message = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._arrived:
            if not self._arrived.wait_for(lambda: number in self._answers or not self._reader.is_alive(), self.timeout):
                raise TimeoutError(f"Chromium did not answer {method} within {self.timeout} s")
        if number not in self._answers:
            raise RuntimeError(f"Chromium exited (status {self.process.poll()}) before answering {method}")
        answer = self._answers.pop(number)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def call(self, method: str, **params) -> dict:
        return self._send(method, params, self._session)

    def wait_for_event(self, method: str, after: int = 0) -> dict:
        """The params of the first event ``method`` received after the first ``after`` events."""
        def found():
            return next((p for m, p in self.events[after:] if m == method), None)
        with self._arrived:
            if not self._arrived.wait_for(lambda: found() is not None, self.timeout):
                raise TimeoutError(f"no {method} within {self.timeout} s")
            return found()

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page; promises are awaited."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        """Load ``url`` and wait until the page, its images and its math are done."""
        mark = len(self.events)
        self.call("Page.navigate", url=url)
        self.wait_for_load(mark)

    def wait_for_load(self, mark: int) -> None:
        """Wait for the load event after event number ``mark``, then for images and MathJax."""
        self.wait_for_event("Page.loadEventFired", after=mark)
        self.evaluate("""Promise.all([
            ...[...document.images].filter(i => !i.complete).map(i => new Promise(r => { i.onload = i.onerror = r; })),
            window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise : null,
        ]).then(() => true)""")

    def screenshot(self, path: Path, y: float = 0) -> Path:
        """A PNG of the window scrolled to ``y``."""
        self.evaluate(f"window.scrollTo(0, {y}); new Promise(r => requestAnimationFrame(() => r(true)))")
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self._send("Browser.close", {})
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    page, shot = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    with Browser() as browser:
        start = time.perf_counter()
        browser.goto(page.as_uri())
        browser.screenshot(shot)
        print(f"{shot}: {browser.evaluate('document.title')} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
