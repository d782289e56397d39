"""Message shortcut "File as contract": opens the filing modal prefilled from the message; submitting files once."""

from __future__ import annotations

from handlers.ids import CallbackId
from tests.conftest import MEMBER, REVIEW

MESSAGE = {
    "ts": "1732460000.000100",
    "user": MEMBER,
    "text": 'New award: vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational '
    "value=2000000 &lt;see the contract file&gt;",
}


def open_shortcut(running, message: dict = MESSAGE) -> dict:
    before = len(running.double.views_opened())
    r = running.slack.message_shortcut(
        user_id=MEMBER, callback_id=CallbackId.FILE_SHORTCUT.value, message=message, channel_id=REVIEW
    )
    assert r.status == 200
    running.double.wait_for(lambda d: len(d.views_opened()) > before)
    return running.double.views_opened()[-1]


def submitted_values(view: dict, **changes: str) -> dict:
    """The state Slack sends when the user submits the form as shown (prefilled), with ``changes`` typed in."""
    values = {}
    for block in view["blocks"]:
        element = block["element"]
        raw = changes.get(block["block_id"])
        if element["type"] == "static_select":
            option = element.get("initial_option")
            if raw is not None:
                option = next(o for o in element["options"] if o["value"] == raw)
            values[block["block_id"]] = {
                element["action_id"]: {"type": "static_select", "selected_option": option}
            }
        else:
            value = raw if raw is not None else element.get("initial_value")
            values[block["block_id"]] = {element["action_id"]: {"type": "plain_text_input", "value": value}}
    return values


def test_shortcut_opens_the_filing_modal_prefilled_from_the_message(running):
    view = open_shortcut(running)
    assert view["callback_id"] == CallbackId.FILE_MODAL.value and view["type"] == "modal"
    by_id = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert by_id["vendor"]["initial_value"] == "Paragon Solutions"
    assert by_id["product"]["initial_value"] == "Graphite"
    assert by_id["agency"]["initial_value"] == "ICE"
    assert by_id["value"]["initial_value"] == "2000000"
    assert by_id["purpose"]["initial_option"]["value"] == "operational"
    assert by_id["scope"]["initial_value"].startswith("New award:")
    assert "<see the contract file>" in by_id["scope"]["initial_value"]  # Slack's escaping undone once
    assert "initial_value" not in by_id["component"]


def test_a_plain_message_prefills_the_scope_only(running):
    view = open_shortcut(running, {"ts": "1732460000.000200", "user": MEMBER, "text": 'Contract with "Acme'})
    by_id = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert by_id["scope"]["initial_value"] == 'Contract with "Acme'
    assert "initial_value" not in by_id["vendor"]


def test_submitting_files_the_contract_and_the_same_view_twice_files_once(running):
    view = open_shortcut(running)
    values = submitted_values(view, component="HSI Division 3")
    first = running.slack.view_submission(
        user_id=MEMBER, callback_id=CallbackId.FILE_MODAL.value, state_values=values, view_id=view["id"]
    )
    assert first.status == 200 and first.json["response_action"] == "update"
    assert "Filed *CR-1*" in str(first.json["view"])
    again = running.slack.view_submission(
        user_id=MEMBER, callback_id=CallbackId.FILE_MODAL.value, state_values=values, view_id=view["id"]
    )
    assert again.status == 200
    assert "CR-1 was already filed from this form" in str(again.json)
    assert running.bot.service.list_contracts().total == 1
    c = running.bot.service.show(1)
    assert (c.vendor, c.product, c.agency, c.component, c.purpose) == (
        "Paragon Solutions",
        "Graphite",
        "ICE",
        "HSI Division 3",
        "operational",
    )
    assert c.filed_by == MEMBER
    assert "CR-1" in running.parent(1)["text"]  # the review starts in the channel


def test_a_bad_field_is_reported_on_the_form_and_files_nothing(running):
    view = open_shortcut(running)
    r = running.slack.view_submission(
        user_id=MEMBER,
        callback_id=CallbackId.FILE_MODAL.value,
        state_values=submitted_values(view, awarded="2024-13-40"),
        view_id=view["id"],
    )
    assert r.status == 200 and r.json["response_action"] == "errors" and "awarded" in r.json["errors"]
    assert running.bot.service.list_contracts().total == 0


def test_the_manifests_declare_the_command_and_this_shortcut():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("slack-manifest.yml", "slack-manifest.socket-mode.yml"):
        text = (root / name).read_text(encoding="utf-8")
        assert "- command: /contract" in text and "should_escape: true" in text, (
            name
        )  # mentions arrive as <@U…>
        assert f"callback_id: {CallbackId.FILE_SHORTCUT.value}" in text and "type: message" in text, name
        assert "interactivity:\n    is_enabled: true" in text, name


def test_shortcut_whose_form_cannot_open_tells_the_user(running):
    from tests.support.slack_double import Fault

    running.double.script(
        "views.open", [Fault(status=200, body={"ok": False, "error": "expired_trigger_id"})]
    )
    url = running.double.new_response_url()
    r = running.slack.message_shortcut(
        user_id=MEMBER,
        callback_id=CallbackId.FILE_SHORTCUT.value,
        message={"ts": "1.000001", "text": "vendor=X"},
        channel_id=REVIEW,
        response_url=url,
    )
    assert r.status == 200
    running.double.wait_for(
        lambda d: any("/contract file" in (p["body"].get("text") or "") for p in d.responses(url))
    )
    assert running.double.views_opened() == []
