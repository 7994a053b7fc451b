"""Measuring a page in a real browser: headless Chromium, when one is installed (apt-get install chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)


def measure(html: Path, width: int, expression: str) -> list[int]:
    """The integers the JavaScript ``expression`` (a string of space-separated numbers) gives once ``html`` has loaded in
    headless Chromium at ``width`` px."""
    assert CHROMIUM is not None
    probe = ("<script>window.addEventListener('load', () => { const d = document.documentElement; "
             f"document.body.setAttribute('data-measured', {expression}); }});</script>")
    probed = html.with_name(f"measured{width}.html")
    probed.write_text(html.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},900",
                           "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-measured="([\d ]+)"', done.stdout)
    assert found, f"Chromium gave no measurement: {done.stderr[-1000:]}"
    return [int(v) for v in found[1].split()]
