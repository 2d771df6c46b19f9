"""Screenshots of a completed ``mhhs-run`` flow run in the Prefect UI, taken by headless Chromium.

Given the Prefect UI's base URL and a flow run id, saves into ``--out-dir``:

- ``flow-run.png`` / ``flow-run.txt``: the flow run page, ``<ui>/runs/flow-run/<id>``
  (header with the run's name and state, the run graph, the Logs tab);
- ``artifacts.png`` / ``artifacts.txt``: the page of that run's ``run-summary`` table
  artifact, ``<ui>/artifacts/artifact/<artifact id>``, which renders the whole table
  (role, participant, dataset, rows, files; the ``totals`` row first). With
  ``--artifacts-view tab`` it is instead the run's Artifacts tab,
  ``<ui>/runs/flow-run/<id>?tab=Artifacts`` (one card per artifact: key, type and
  description, not the table's rows); with ``--artifacts-view key`` the artifact key's
  page, ``<ui>/artifacts/key/run-summary`` (the *latest* run-summary, whichever run
  made it, and its history).

The ``.txt`` files hold ``document.body.innerText`` of the page as it was captured, so a
test can check what was really rendered (participant ids, row counts).

Usage::

    deploy/install-chromium.sh                  # once, as root: Debian's chromium
    python deploy/ui_screenshot.py http://127.0.0.1:4200 <flow-run-id> --out-dir shots/
    # -> shots/flow-run.png shots/flow-run.txt shots/artifacts.png shots/artifacts.txt

How it waits: the UI is a single-page app that loads its data by XHR after start, so a
plain ``chromium --screenshot`` often captures a spinner. This script drives Chromium
over the DevTools protocol on a pipe (``--remote-debugging-pipe``: no port, no
websocket library, standard library only), navigates, and polls
``document.body.innerText`` until every expected string is present (the flow run's name
and state for the run page; ``totals``, the run summary's participant ids and its total
of half-hour values for the artifact page, all read from the API first), then until the
text has stopped changing; only then does it grow the viewport to the page's content
height (so the whole table fits; capped by ``--max-height``) and call
``Page.captureScreenshot``. It never waits on a fixed sleep alone.

Network: Chromium runs with the flags a closed network needs (no background networking,
component updates, sync, QUIC) and with a dead proxy (``127.0.0.1:9``) for every host
but loopback and the UI's own host, so nothing leaves for the internet.

Options: ``--chromium`` (default ``$CHROMIUM`` or ``/usr/bin/chromium``), ``--api-url``
(default ``<ui>/api``), ``--width``/``--height`` (1600x1100), ``--max-height``,
``--timeout`` seconds per page (60), ``--expect TEXT`` (extra text both pages must show).

Exit codes: 0 both screenshots saved; 2 with one line on stderr when Chromium is
missing, when the API does not know the flow run (or cannot be reached), or when a page
never showed the expected text within the timeout (the line names the page and the
missing text); 1 for anything else (a traceback).

Importable: :func:`capture_flow_run` does the whole job and returns the saved paths and
page texts; :class:`Chromium` is the small DevTools-over-pipe driver behind it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
RUN_SUMMARY_KEY = "run-summary"

# Flags for headless Chromium on a machine with a closed network, as root.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--remote-debugging-pipe",
]

# The tallest scrollable thing on the page: the document, or an inner scroll container.
CONTENT_HEIGHT_JS = """
(() => {
  let h = Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);
  for (const el of document.querySelectorAll('*')) {
    const s = getComputedStyle(el);
    if ((s.overflowY === 'auto' || s.overflowY === 'scroll') && el.scrollHeight > el.clientHeight) {
      h = Math.max(h, el.scrollHeight + el.getBoundingClientRect().top + 32);
    }
  }
  return Math.ceil(h);
})()
"""


class ChromiumMissing(RuntimeError):
    """The Chromium executable is not there."""


class PageTimeout(TimeoutError):
    """A page never showed the expected text."""


class ApiError(RuntimeError):
    """The Prefect API did not answer, or does not know the flow run."""


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    ``with Chromium() as c: text = c.load(url, ["expected"]); c.screenshot(path)``
    """

    def __init__(self, executable: str | None = None, width: int = 1600, height: int = 1100,
                 allow_hosts: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.executable = executable or os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM
        self.width, self.height = width, height
        self.allow_hosts = allow_hosts
        self._proc: subprocess.Popen | None = None
        self._next_id = 0
        self._buf = b""
        self._events: list[dict] = []
        self.session: str | None = None

    # -- process ---------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        exe = shutil.which(self.executable) or self.executable
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise ChromiumMissing(f"Chromium not found at {self.executable}: run deploy/install-chromium.sh (as root), or give --chromium / $CHROMIUM")
        self._profile = tempfile.mkdtemp(prefix="ui-screenshot-profile-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def _fds() -> None:  # in the child: the pipe is fds 3 (commands in) and 4 (replies out)
            import fcntl

            r, w = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)  # inheritable; every other descriptor here is close-on-exec
            os.dup2(w, 4)

        bypass = ";".join(["127.0.0.1", "localhost", "[::1]", *self.allow_hosts])
        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                f"--window-size={self.width},{self.height}",
                "--proxy-server=http://127.0.0.1:9", f"--proxy-bypass-list={bypass}",
                "about:blank"]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=_fds, close_fds=False)  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.set_viewport(self.height)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            self.call("Browser.close", _session=False, _timeout=5)
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)
        self._proc = None

    # -- protocol --------------------------------------------------------------------
    def call(self, method: str, _session: bool = True, _timeout: float = 30, **params) -> dict:
        """Send one command and wait for its reply (events that arrive meanwhile are kept)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if _session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + _timeout
        while True:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                raise TimeoutError(f"Chromium did not answer {method} within {_timeout} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)
            del self._events[:-200]

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self._buf:
            if timeout <= 0:
                return None
            t0 = time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], timeout)
            timeout -= time.monotonic() - t0
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (status {self._proc.poll() if self._proc else None})")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    def set_viewport(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=height, deviceScaleFactor=1, mobile=False)

    # -- pages -----------------------------------------------------------------------
    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def load(self, url: str, expect: list[str], timeout: float = 60, settle: float = 1.0) -> str:
        """Open ``url`` and wait until its text holds every string of ``expect`` and then
        stops changing for ``settle`` seconds; returns that text. Raises PageTimeout."""
        self.set_viewport(self.height)
        self.call("Page.navigate", url=url)
        return self.load_current(expect, timeout=timeout, settle=settle, url=url)

    def load_current(self, expect: list[str], timeout: float = 60, settle: float = 1.0, url: str = "the page") -> str:
        """Wait on the page as it is (see :meth:`load`)."""
        deadline = time.monotonic() + timeout
        text, stable_since = "", None
        while True:
            try:
                now_text = self.text()
            except RuntimeError:  # navigating: the old context is gone
                now_text = ""
            missing = [e for e in expect if e not in now_text]
            if not missing and now_text == text:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= settle:
                    self.evaluate("document.fonts.ready.then(() => true)")
                    return now_text
            else:
                stable_since = None
            text = now_text
            if time.monotonic() > deadline:
                if missing:
                    raise PageTimeout(f"{url} never showed {missing!r} within {timeout:g} s")
                return text  # all there, but still changing (a clock, a live log): take it
            time.sleep(0.25)

    def click_text(self, text: str, timeout: float = 20) -> None:
        """Click the first button, tab or link whose visible text is exactly ``text``."""
        js = f"""(() => {{
          const el = [...document.querySelectorAll('button, [role=tab], a, li.p-tab')].find(e => e.innerText.trim() === {json.dumps(text)});
          if (el) el.click();
          return !!el;
        }})()"""
        deadline = time.monotonic() + timeout
        while not self.evaluate(js):
            if time.monotonic() > deadline:
                raise PageTimeout(f"no {text!r} button/tab to click within {timeout:g} s")
            time.sleep(0.25)

    def screenshot(self, path: Path, max_height: int = 8000) -> tuple[int, int]:
        """Grow the viewport to the content's height (at least the window's, at most
        ``max_height``), then save a PNG of it; returns its (width, height)."""
        height = max(self.height, min(int(self.evaluate(CONTENT_HEIGHT_JS) or 0), max_height))
        if height != self.height:
            self.set_viewport(height)
            time.sleep(0.3)  # let the layout follow the new viewport
            again = max(self.height, min(int(self.evaluate(CONTENT_HEIGHT_JS) or 0), max_height))
            if again > height:
                height = again
                self.set_viewport(height)
                time.sleep(0.3)
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
        data = self.call("Page.captureScreenshot", format="png", fromSurface=True, captureBeyondViewport=False)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return self.width, height


# -- the Prefect API (standard library only) ---------------------------------------------
def _api(api_url: str, path: str, body: dict | None = None, timeout: float = 10):
    url = api_url.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise ApiError(f"Prefect API {url} answered {e.code}: {e.read()[:200].decode(errors='replace')}") from e
    except (urllib.error.URLError, OSError) as e:
        raise ApiError(f"Prefect API {url} unreachable: {e}") from e


def run_summary(api_url: str, flow_run_id: str) -> dict | None:
    """The flow run's ``run-summary`` artifact as the API returns it (``data`` parsed), or None."""
    arts = _api(api_url, "/artifacts/filter", {"artifacts": {"key": {"any_": [RUN_SUMMARY_KEY]}}, "flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "CREATED_DESC", "limit": 1})
    if not arts:
        return None
    art = arts[0]
    if isinstance(art.get("data"), str):
        try:
            art["data"] = json.loads(art["data"])
        except ValueError:
            pass
    return art


def _summary_expectations(art: dict) -> list[str]:
    """What the rendered run summary must show: 'totals', the participant ids, and the
    totals row's count of half-hour values (as the UI prints it, with or without commas:
    the shorter form is checked, both are substrings of their formatted selves)."""
    rows = art.get("data") if isinstance(art.get("data"), list) else []
    expect = ["totals"]
    for row in rows:
        p = str(row.get("participant", ""))
        if p and p != "-" and p not in expect:
            expect.append(p)
    total = next((r.get("rows") for r in rows if r.get("dataset") == "totals"), None)
    if total is not None:
        expect.append(str(total))
    return expect


@dataclass
class Capture:
    flow_run_png: Path
    artifacts_png: Path
    flow_run_text: str
    artifacts_text: str
    urls: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)


def capture_flow_run(ui_url: str, flow_run_id: str, out_dir: str | Path, *, api_url: str | None = None,
                     chromium: str | None = None, width: int = 1600, height: int = 1100, max_height: int = 8000,
                     timeout: float = 60, artifacts_view: str = "artifact", expect: tuple[str, ...] = ()) -> Capture:  # fmt: skip
    """Save ``flow-run.png``/``.txt`` and ``artifacts.png``/``.txt`` for one flow run."""
    ui = ui_url.rstrip("/")
    api = (api_url or ui + "/api").rstrip("/")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _api(api, f"/flow_runs/{flow_run_id}")
    art = run_summary(api, flow_run_id)
    if artifacts_view == "artifact" and art is None:
        raise ApiError(f"flow run {flow_run_id} has no {RUN_SUMMARY_KEY!r} artifact (not finished, or not an mhhs-run?)")

    run_expect = [run["name"], *([run["state_name"]] if run.get("state_name") else []), *expect]
    summary_expect = (_summary_expectations(art) if art else []) + list(expect)
    urls = {"flow-run": f"{ui}/runs/flow-run/{flow_run_id}"}
    if artifacts_view == "artifact":
        urls["artifacts"] = f"{ui}/artifacts/artifact/{art['id']}"
    elif artifacts_view == "key":
        urls["artifacts"] = f"{ui}/artifacts/key/{RUN_SUMMARY_KEY}"
    elif artifacts_view == "tab":
        urls["artifacts"] = f"{ui}/runs/flow-run/{flow_run_id}?tab=Artifacts"
        summary_expect = [RUN_SUMMARY_KEY, *list(expect)]
    else:
        raise ValueError(f"artifacts_view must be artifact, key or tab, not {artifacts_view!r}")

    host = urllib.parse.urlsplit(ui).hostname or "127.0.0.1"
    texts, sizes = {}, {}
    with Chromium(chromium, width=width, height=height, allow_hosts=(host,)) as c:
        for name, want in (("flow-run", run_expect), ("artifacts", summary_expect)):
            try:
                if name == "artifacts" and artifacts_view == "tab":
                    # ?tab=Artifacts alone is not enough: the UI falls back to Logs while the
                    # run loads (the tab is hidden until then), so click the tab once it shows.
                    c.load(urls[name], run_expect, timeout=timeout, settle=0.5)
                    c.click_text("Artifacts", timeout=timeout)
                    texts[name] = c.load_current(want, timeout=timeout)
                else:
                    texts[name] = c.load(urls[name], want, timeout=timeout)
            except PageTimeout as e:  # keep what the page did show, for a look
                c.screenshot(out / f"{name}-timeout.png", max_height=max_height)
                (out / f"{name}-timeout.txt").write_text(c.text())
                raise PageTimeout(f"{e} (what it showed: {out / (name + '-timeout.png')})") from None
            sizes[name] = c.screenshot(out / f"{name}.png", max_height=max_height)
            texts[name] = c.text()  # as captured (after the resize)
            (out / f"{name}.txt").write_text(texts[name])
    return Capture(out / "flow-run.png", out / "artifacts.png", texts["flow-run"], texts["artifacts"], urls, sizes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ui_screenshot.py", description="Screenshots of a flow run and its run-summary artifact in the Prefect UI (headless Chromium).")
    p.add_argument("ui_url", help="Prefect UI base URL, e.g. http://127.0.0.1:4200")
    p.add_argument("flow_run_id", help="the flow run's id (a UUID)")
    p.add_argument("--out-dir", default=".", help="folder for flow-run.png/.txt and artifacts.png/.txt (default: .)")
    p.add_argument("--api-url", help="Prefect API URL (default: <ui_url>/api)")
    p.add_argument("--chromium", help=f"Chromium executable (default: $CHROMIUM or {DEFAULT_CHROMIUM})")
    p.add_argument("--artifacts-view", choices=["artifact", "key", "tab"], default="artifact", help="artifact: the run's run-summary page (default); key: /artifacts/key/run-summary; tab: the run's Artifacts tab")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1100, help="window height; the screenshot grows to the content's height")
    p.add_argument("--max-height", type=int, default=8000)
    p.add_argument("--timeout", type=float, default=60, help="seconds each page may take to show its expected text (default 60)")
    p.add_argument("--expect", action="append", default=[], help="extra text both pages must show (repeatable)")
    a = p.parse_args(argv)
    try:
        cap = capture_flow_run(a.ui_url, a.flow_run_id, a.out_dir, api_url=a.api_url, chromium=a.chromium, width=a.width, height=a.height,
                               max_height=a.max_height, timeout=a.timeout, artifacts_view=a.artifacts_view, expect=tuple(a.expect))  # fmt: skip
    except ChromiumMissing as e:
        print(f"ui_screenshot: {e}", file=sys.stderr)
        return 2
    except PageTimeout as e:
        print(f"ui_screenshot: page not ready: {e}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"ui_screenshot: {e}", file=sys.stderr)
        return 2
    for name, png in (("flow-run", cap.flow_run_png), ("artifacts", cap.artifacts_png)):
        w, h = cap.sizes[name]
        print(f"{png} ({w}x{h}) <- {cap.urls[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
