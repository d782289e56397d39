"""The screening lists of tests/fixtures/lists, loaded as `contract-bot lists load` would load them."""

from __future__ import annotations

from pathlib import Path

LISTS = Path(__file__).resolve().parent.parent / "fixtures" / "lists"


def load_fixture_list(running, name: str = "csl", file: str = "csl.csv") -> None:  # noqa: ANN001 - conftest.Running
    """Load ``file`` as the list ``name`` into the running bot's database, on its clock's today."""
    from bot.services.vendors import load_list

    load_list(
        running.bot.session_factory,
        running.clock,
        name,
        (LISTS / file).read_bytes(),
        today=running.bot.service.today(),
    )
