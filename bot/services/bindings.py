"""A button acts only on the contract and question of the message it is on.

A question's buttons carry "<contract id>:<QID>" as their value; Slack also tells us which message was clicked (the
container's channel and ts). The value is believed only when that message is the question's own message, as the
outbox recorded it when it posted it, so a forged value naming another contract or question does nothing.
"""

from __future__ import annotations

from bot.domain.errors import InputError
from storage import repositories as repo
from storage.db import SessionFactory, read_only
from storage.models import Contract, Question

NOT_ITS_MESSAGE = "This button is not on its question's message, so nothing was done."


class ButtonBindings:
    """Checks that a button's value names what the message it is on shows."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self.session_factory = session_factory

    def check_question_button(
        self, contract_id: int, qid: str, channel_id: object, message_ts: object
    ) -> None:
        """Raises InputError unless (channel_id, message_ts) is the message of question ``qid`` of the contract.

        An unknown contract or question is left to the action itself (it names what is missing)."""
        with read_only(self.session_factory) as s:
            contract = repo.get_contract(s, contract_id)
            question = repo.get_question(s, contract_id, qid) if contract is not None else None
        if contract is None or question is None:
            return
        if not is_question_message(contract, question, channel_id, message_ts):
            raise InputError(NOT_ITS_MESSAGE)


def is_question_message(
    contract: Contract, question: Question | None, channel_id: object, message_ts: object
) -> bool:
    """Whether (channel_id, message_ts) is the message the outbox posted for this question of the contract."""
    return (
        question is not None
        and isinstance(message_ts, str)
        and question.message_ts is not None
        and message_ts == question.message_ts
        and (contract.channel_id is None or channel_id == contract.channel_id)
    )
