"""A real headless browser for tests: Debian's chromium, driven over W3C WebDriver by chromedriver.

    with browser.session(width=390, height=844) as page:
        page.open(url)
        page.script('return document.title')
        page.screenshot(path)

The WebDriver protocol is plain JSON over HTTP, spoken here with urllib: no
client library. Where chromium or its driver is missing, ``available()``
installs them with apt when the tests run as root (as CI does).
"""

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from tests.support import debian
from tests.support.uwsgi_server import free_port

PACKAGES = ('chromium', 'chromium-driver')
# headless, and nothing that reaches beyond the page: no sandbox (root in a container), no GPU
ARGUMENTS = (
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-extensions',
    '--no-first-run',
    '--hide-scrollbars',
)


def available():
    """Why no browser can run here, or None when one can."""
    return debian.missing(('chromium', 'chromedriver'), PACKAGES)


class Page:
    """One WebDriver session."""

    def __init__(self, url):
        self.url = url

    def _call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={'Content-Type': 'application/json'}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return json.loads(reply.read())['value']
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f'WebDriver {method} {path}: {exc.read().decode()[:500]}') from None

    def open(self, url):
        self._call('POST', '/url', {'url': url})

    def script(self, source, *args):
        return self._call('POST', '/execute/sync', {'script': source, 'args': list(args)})

    def text(self, selector):
        """The text a person sees in the first element matching ``selector``."""
        return self.script('return document.querySelector(arguments[0]).innerText', selector)

    def screenshot(self, path):
        png = base64.b64decode(self._call('GET', '/screenshot'))
        with open(path, 'wb') as f:
            f.write(png)
        return png


@contextlib.contextmanager
def session(width=1280, height=900, phone=False):
    """A fresh headless chromium, ``width`` x ``height`` CSS pixels (``phone``: with its viewport rules)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix='chromium-') as profile:
        driver = subprocess.Popen(
            ['chromedriver', f'--port={port}'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f'http://127.0.0.1:{port}'
            _wait_for_driver(base)
            capabilities = {
                'browserName': 'chrome',
                'goog:chromeOptions': {
                    'binary': shutil.which('chromium'),
                    'args': [*ARGUMENTS, f'--user-data-dir={profile}', f'--window-size={width},{height}'],
                },
            }
            if phone:
                metrics = {'width': width, 'height': height, 'pixelRatio': 1, 'mobile': True}
                capabilities['goog:chromeOptions']['mobileEmulation'] = {'deviceMetrics': metrics}
            created = Page(base)._call('POST', '/session', {'capabilities': {'alwaysMatch': capabilities}})
            page = Page(f'{base}/session/{created["sessionId"]}')
            try:
                yield page
            finally:
                with contextlib.suppress(RuntimeError, OSError):
                    page._call('DELETE', '')
        finally:
            driver.terminate()
            driver.wait(10)


def _wait_for_driver(base, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + '/status', timeout=2) as reply:
                if json.loads(reply.read())['value'].get('ready'):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError('chromedriver did not start')
        time.sleep(0.1)
