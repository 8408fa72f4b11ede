#!/usr/bin/env python3
"""Drives the system's headless Chromium (Debian's `chromium`, nothing downloaded) over the Chrome DevTools
Protocol on a pipe (--remote-debugging-pipe: no port, no extra package) and reports what a person sees.

    browser.py site BASE ADMIN_KEY HIDE_RECORD_ID [READY_FILE]
                                                    -> JSON of observations (see `site` below); with READY_FILE,
                                                       writes it once the board is open and waits for a new row
    browser.py screenshots BASE OUT_DIR             -> PNGs of every page, desktop and phone width

Every JavaScript dialog (alert, confirm, prompt) that opens is recorded: a hostile string that runs shows up there.
Exit status 1 with a message when the browser cannot be driven."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request


class Browser:
    def __init__(self):
        binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if not binary:
            raise RuntimeError("no chromium on PATH")
        self.profile = tempfile.mkdtemp(prefix="cdp-")
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        def descriptors():
            # Chromium reads commands on fd 3 and writes answers on fd 4 (moved high first, so neither clobbers
            # the other).
            reading = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=descriptors)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.dialogs = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(domain + ".enable", session=True)

    def send(self, message):
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")

    def receive(self, timeout):
        deadline = time.time() + timeout
        while b"\0" not in self.buffer:
            if time.time() > deadline:
                raise TimeoutError("the browser did not answer")
            ready, _, _ = select.select([self.from_browser], [], [], max(0.0, deadline - time.time()))
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed its pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=False, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.send(message)
        while True:
            answer = self.receive(timeout)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.note(answer)

    def note(self, event):
        method = event.get("method", "")
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(event["params"].get("message", ""))
            self.send({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": False},
                       "sessionId": self.session})
        self.events.append(method)

    def wait_for(self, predicate, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                event = self.receive(0.2)
                self.note(event)
            except TimeoutError:
                pass
            if predicate():
                return True
        return False

    def go(self, url):
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        if not self.wait_for(lambda: "Page.loadEventFired" in self.events):
            raise TimeoutError("page did not load: " + url)

    def js(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                 "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def width(self, width, mobile):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile}, session=True)

    def key(self, name, code):
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": name, "code": name,
                                                 "windowsVirtualKeyCode": code}, session=True)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            self.send({"id": 999999, "method": "Browser.close"})
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 — it is going away either way
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# What a page shows: its rows' text, its scripts, any markup a stored string could have made.
PAGE_FACTS = """(() => ({
  title: document.title,
  h1: (document.querySelector('h1') || {}).textContent || '',
  rows: Array.from(document.querySelectorAll('#board tbody tr')).map(r => r.textContent.replace(/\\s+/g, ' ').trim()),
  record_links: Array.from(document.querySelectorAll('#board a[href^="/records/"]')).map(a => a.getAttribute('href')),
  scripts: Array.from(document.scripts).map(s => s.getAttribute('src')),
  images: document.images.length,
  javascript_links: Array.from(document.links).filter(a => a.protocol === 'javascript:').length,
  handlers: Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
  svgs: document.querySelectorAll('svg').length,
  text: document.body.innerText,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  labelled_inputs: Array.from(document.querySelectorAll('form.filters input')).every(i => i.closest('label')),
  live: (document.getElementById('live') || {}).textContent || ''
}))()"""


def site(base, admin_key, hide, ready_file=None):
    browser = Browser()
    report = {}
    try:
        browser.width(1280, False)
        browser.go(base + "/")
        # The board's script opens its WebSocket after load.
        browser.wait_for(lambda: "Network.webSocketHandshakeResponseReceived" in browser.events, timeout=10)
        report["board"] = browser.js(PAGE_FACTS)
        report["websocket"] = "Network.webSocketHandshakeResponseReceived" in browser.events
        # Keyboard: the first Tab reaches the skip link, Enter follows it, the next Tab lands in the page's content.
        browser.call("Page.bringToFront", session=True)
        browser.key("Tab", 9)
        keyboard = {"first": browser.js("document.activeElement.className")}
        browser.key("Enter", 13)
        keyboard["hash"] = browser.js("location.hash")
        browser.key("Tab", 9)
        keyboard["next"] = browser.js("document.activeElement.closest('main') ? document.activeElement.tagName : ''")
        report["keyboard"] = keyboard
        if ready_file:
            # A result accepted while the page is open arrives as a new, highlighted row, and is announced.
            with open(ready_file, "w") as handle:
                handle.write("ready")
            report["inserted"] = browser.wait_for(lambda: browser.js("document.querySelectorAll('#board tr.new').length") > 0,
                                                  timeout=60)
            report["inserted_live"] = browser.js("document.getElementById('live').textContent")
        # A live update: an operator hides a record; the open page loses its row without a reload.
        request = urllib.request.Request(
            base + f"/api/v1/admin/records/{hide}/moderation", method="POST",
            data=json.dumps({"action": "hide", "reason": "browser test"}).encode(),
            headers={"Authorization": "Bearer " + admin_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            report["hidden_status"] = answer.status
        report["live_update"] = browser.wait_for(
            lambda: browser.js(f"!document.querySelector('#board a[href=\"/records/{hide}\"]')"), timeout=15)
        report["after_live"] = browser.js(PAGE_FACTS)
        # The filter form, as a person uses it: type a framework, press the button.
        browser.js("document.querySelector('form.filters input[name=framework]').value = 'sglang'")
        browser.events.clear()
        browser.js("document.querySelector('form.filters button[type=submit]').click()")
        browser.wait_for(lambda: "Page.loadEventFired" in browser.events)
        report["filtered"] = browser.js(PAGE_FACTS)
        report["filtered_url"] = browser.js("location.search")
        # Following a record link.
        browser.events.clear()
        browser.js("document.querySelector('#board a[href^=\"/records/\"]').click()")
        browser.wait_for(lambda: "Page.loadEventFired" in browser.events)
        report["record_url"] = browser.js("location.pathname")
        report["record"] = browser.js(PAGE_FACTS)
        for name, path in (("stats", "/stats"), ("datasets", "/datasets")):
            browser.go(base + path)
            report[name] = browser.js(PAGE_FACTS)
        browser.go(base + "/")
        ids = [link.split("/")[-1] for link in browser.js(PAGE_FACTS)["record_links"]][:2]
        browser.go(base + "/compare?records=" + ",".join(ids))
        report["compare"] = browser.js(PAGE_FACTS)
        browser.width(390, True)
        browser.go(base + "/")
        report["phone"] = browser.js(PAGE_FACTS)
        report["dialogs"] = browser.dialogs
    finally:
        browser.close()
    return report


def screenshots(base, out):
    os.makedirs(out, exist_ok=True)
    browser = Browser()
    try:
        browser.go(base + "/")
        first = browser.js("(document.querySelector('#board a[href^=\"/records/\"]') || {}).pathname || ''")
        pages = [("board", "/"), ("stats", "/stats"), ("datasets", "/datasets")]
        if first:
            pages += [("record", first), ("compare", "/compare?records=" + first.split("/")[-1])]
        for width, label, mobile in ((1280, "desktop", False), (390, "phone", True)):
            browser.width(width, mobile)
            for name, path in pages:
                browser.go(base + path)
                browser.screenshot(os.path.join(out, f"{name}-{label}.png"))
    finally:
        browser.close()
    return {"pages": len(pages) * 2}


def main():
    try:
        if len(sys.argv) in (5, 6) and sys.argv[1] == "site":
            print(json.dumps(site(*sys.argv[2:])))
        elif len(sys.argv) == 4 and sys.argv[1] == "screenshots":
            print(json.dumps(screenshots(sys.argv[2], sys.argv[3])))
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    except Exception as error:  # noqa: BLE001 — any failure is the answer
        print(f"browser: {error!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
