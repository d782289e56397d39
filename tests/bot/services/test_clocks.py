"""matplotlib is loaded when the first clock picture is drawn, not when the bot or a command-line tool starts (half a
second of every start-up), on the Agg canvas, without pyplot. The pictures themselves are tested where they are sent
(tests/e2e: `timeline`, the drafts and the annual report)."""

from __future__ import annotations

import subprocess
import sys


def test_starting_the_bot_does_not_load_matplotlib_until_a_picture_is_drawn():
    script = (
        "import sys\n"
        "import bot.app, bot.cli\n"
        "assert 'matplotlib' not in sys.modules, 'loaded at start-up'\n"
        "from datetime import date\n"
        "from bot.services.clocks import StripPainter\n"
        "assert 'matplotlib' not in sys.modules, 'loaded by the import of the picture module'\n"
        "StripPainter(date(2025, 1, 1), date(2025, 12, 31), date(2025, 12, 31))\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
        "import matplotlib\n"
        "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
