"""Every action_id, block_id and callback_id, named once for both builders and listeners."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """Interactive elements."""

    ANSWER_YES = "answer_yes"
    ANSWER_NO = "answer_no"
    ANSWER_UNKNOWN = "answer_unknown"
    ADD_NOTE = "add_note"
    SNOOZE_TOMORROW = "snooze_tomorrow"
    SNOOZE_3D = "snooze_3d"
    # "More" on a long answer: the next page, shown privately. Values: audit "<contract id>:<page>",
    # list "<status or empty>:<page>", App Home "<list key>:<offset>".
    AUDIT_MORE = "audit_more"
    LIST_MORE = "list_more"
    HOME_MORE = "home_more"
    # "File anyway" under a filing that looks like an open contract. Value: JSON {"text": the command, "nonce": …}
    FILE_ANYWAY = "file_anyway"


class CallbackId(StrEnum):
    """Modals and shortcuts."""

    FILE_MODAL = "file_contract_modal"
    NOTE_MODAL = "add_note_modal"
    FILE_SHORTCUT = "file_as_contract"


class BlockId(StrEnum):
    """Input blocks of the modals."""

    VENDOR = "vendor"
    PRODUCT = "product"
    AGENCY = "agency"
    COMPONENT = "component"
    VALUE = "value"
    AWARDED = "awarded"
    TERM = "term"
    PURPOSE = "purpose"
    THIRD_PARTY = "third_party"
    PARENT = "parent"
    CONTRACT_NO = "contract_no"
    SCOPE = "scope"
    NOTE = "note"


class MessageBlockId(StrEnum):
    """Blocks of the bot's messages that carry buttons (prefixes: an edited message's blocks get new ids, F1.31)."""

    PARENT = "parent"
    QUESTION = "q"
    SNOOZE = "snooze"
    MORE = "more"


ANSWER_ACTIONS = {ActionId.ANSWER_YES: "yes", ActionId.ANSWER_NO: "no", ActionId.ANSWER_UNKNOWN: "unknown"}
