"""The console shows a drafted notice as Markdown (SPEC "The order's paperwork"): the Word file is sent to the
person's direct messages, and the transcript prints the Markdown sent with it."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from bot.config import Settings
from bot.console import run_console

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York


def test_the_console_prints_the_draft_as_markdown():
    out = io.StringIO()
    lines = [
        "as mel",
        '/contract file vendor="Acme <b>" product=Eye agency=FBI purpose=excluded awarded=2026-11-02 scope="lab"',
        "as max",
        "/contract draft CR-1 excluded",
    ]
    code = run_console(
        Settings(cui_banner="CUI//PROCURE"),
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=out,
        start=START,
    )
    assert code == 0
    text = out.getvalue()
    assert "[DM to @max] file CR-1-excluded-draft.docx" in text
    assert "# Notice of a purchase for an excluded purpose (EO 14093 §4(b))" in text
    assert text.count("**CUI//PROCURE**") == 2  # top and bottom
    assert "Acme \\<b\\>" in text  # user text is literal Markdown
    assert "by 2026-12-17 (§4(b))" in text and "Authorized uses: lab" in text
