"""Real servers for tests, on 127.0.0.1 in their own process groups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    """A real ``mlflow server`` process on 127.0.0.1 (its own process group, so it can be
    killed whole), artifacts under ``folder``."""

    backend_uri: str
    folder: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> MlflowServer:
        log = self.folder / "server.log"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", (self.folder / "mlartifacts").as_uri(),
             "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=log.open("a"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return self
            except OSError:
                assert self.process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"MLflow server not up in {timeout} s"
                time.sleep(0.5)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


def chromium(profile: Path):
    """Headless Chromium (Debian's chromium and chromium-driver, see scripts/setup-browser.sh)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
