"""The HParams tab in a real browser: headless Chromium (Debian's ``chromium``
package) driven by Playwright's Python package, no browser download.

Opens the parallel-coordinates view of a sweep written by TensorBoardCallback,
checks that one line is drawn per trial (running ones included) and saves the
screenshot the README shows, ``docs/img/hparams_parallel_coordinates.png``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.integration.test_tensorboard_server import TensorBoardServer, write_fake_sweep

CHROMIUM = os.environ.get("TUNER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "img", "hparams_parallel_coordinates.png")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LINES = "tf-hparams-parallel-coords-plot svg g.foreground path"  # Playwright's CSS pierces shadow roots

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary: apt-get install -y chromium"),
    pytest.mark.skipif(shutil.which("tensorboard") is None, reason="the `tensorboard` command is not installed"),
]


def test_parallel_coordinates_draws_one_line_per_trial(tmp_path):
    ends = ["complete", "complete", "stopped", "complete", "error", "complete", "stopped", "complete",
            "running", "running"]
    cb, trials = write_fake_sweep(str(tmp_path / "exp"), ends)
    server = TensorBoardServer(str(tmp_path / "exp" / "tensorboard"))
    try:
        server.wait_until(lambda s: len(s.session_groups()) == len(trials))
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(f"{server.url}/#hparams", wait_until="domcontentloaded")
                page.get_by_text("PARALLEL COORDINATES VIEW").click()
                lines = page.locator(LINES)
                sync_api.expect(lines).to_have_count(len(trials), timeout=60_000)
                page.wait_for_timeout(500)  # let the last transition settle for the picture
                os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
                page.screenshot(path=SCREENSHOT)
                assert lines.count() == len(trials)
            finally:
                browser.close()
    finally:
        server.stop()
        cb.on_experiment_end(trials)
