"""Foundation end to end: filing, the review thread, answering, show/list/help, roles — over real HTTP."""

from __future__ import annotations

from tests.conftest import ADMIN, MEMBER, REVIEW, REVIEWER
from tests.support.replies import flat

FILE_ICE = (
    'file vendor="Paragon Solutions" product=Graphite agency="ICE" component="HSI Division 3" '
    "value=2000000 awarded=2024-09-27 purpose=operational"
)


def test_file_posts_parent_and_asks_scope_questions(running):
    r = running.command(FILE_ICE)
    assert r.status == 200
    assert "CR-1" in r.json["text"] and r.json.get("response_type") == "ephemeral"
    parent = running.parent(1)
    assert "CR-1" in parent["text"] and "Paragon Solutions" in parent["text"]
    assert "answered 0 of 20" in parent["text"]
    thread = running.thread(1)
    asked = [m for m in thread if any(b.get("type") == "actions" for b in m.get("blocks") or [])]
    assert [m["text"].split(":")[0] for m in asked] == [f"CR-1 SCOPE-{i}" for i in range(1, 6)]
    labels = [e["text"]["text"] for e in asked[0]["blocks"][-1]["elements"]]
    assert labels[:3] == ["Yes", "No", "Unknown"]


def test_button_answer_updates_question_and_progress(running):
    running.command(FILE_ICE)
    thread = running.thread(1)
    q = next(m for m in thread if m["text"].startswith("CR-1 SCOPE-1"))
    r = running.slack.block_action(
        user_id=REVIEWER,
        action_id="answer_yes",
        value="1:SCOPE-1",
        message={"ts": q["ts"], "channel": REVIEW},
        channel_id=REVIEW,
    )
    assert r.status == 200
    running.double.wait_for(lambda d: "Answer: Yes" in str(d.message(REVIEW, q["ts"])["blocks"]))
    running.double.wait_for(
        lambda d: "answered 1 of 20" in d.message(REVIEW, running.bot.service.show(1).parent_ts)["text"]
    )


def test_non_reviewer_button_is_refused_privately(running):
    running.command(FILE_ICE)
    q = next(m for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-1"))
    url = running.double.new_response_url()
    r = running.slack.block_action(
        user_id=MEMBER,
        action_id="answer_no",
        value="1:SCOPE-1",
        response_url=url,
        message={"ts": q["ts"], "channel": REVIEW},
    )
    assert r.status == 200
    running.double.wait_for(
        lambda d: any("reviewer" in (p["body"].get("text") or "") for p in d.responses(url))
    )
    assert running.bot.service.show(1).answered == 0


def test_scope_1_no_ends_questioning(running):
    running.command(FILE_ICE)
    running.thread(1)
    r = running.command("answer CR-1 SCOPE-1 no", user=REVIEWER)
    assert "Recorded" in r.json["text"]
    thread = running.thread(1)
    assert any("does not apply" in m["text"] for m in thread)
    assert not any(m["text"].startswith("CR-1 PROC-") for m in thread)


def test_completing_scope_asks_procurement(running):
    running.command(FILE_ICE)
    for i in range(1, 6):
        assert "Recorded" in running.command(f"answer CR-1 SCOPE-{i} yes", user=REVIEWER).json["text"]
    thread = running.thread(1)
    assert [m["text"].split(":")[0] for m in thread if m["text"].startswith("CR-1 PROC-")] == [
        f"CR-1 PROC-{i}" for i in range(1, 5)
    ]


def test_show_list_help_and_roles(running):
    running.command(FILE_ICE)
    show = running.command("show CR-1")
    assert "not permitted" in show.json["text"]
    assert (
        "CR-1" in running.command("list").json["text"] or "1 contract" in running.command("list").json["text"]
    )
    assert "/contract" in flat(running.command("help").json)  # longer than one text object: in sections
    r = running.command("admin grant <@UNEW1|new> reviewer", user=ADMIN)
    assert "reviewer" in r.json["text"]
    assert "UNEW1" in running.command("admin roles", user=ADMIN).json["text"]
    refused = running.command("admin roles", user=MEMBER)
    assert "admin" in refused.json["text"]


def test_bad_input_changes_nothing(running):
    for text, expect in [
        ("frobnicate", "subcommand"),
        ("file vendor=x", "missing"),
        ("show CR-999", "CR-999"),
        ("show CR-x", "reference"),
        ('file vendor="unbalanced product=a agency=b', "quote"),
        ("file vendor=a product=b agency=c awarded=2024-13-40", "date"),
        ("file vendor=a product=b agency=c value=abc", "value"),
        ('file vendor="SECRET//NOFORN" product=b agency=c', "classified"),
    ]:
        r = running.command(text)
        assert r.status == 200
        assert expect.lower() in r.json["text"].lower(), (text, r.json["text"])
    assert running.bot.service.list_contracts().total == 0


def test_injection_is_stored_as_typed_and_shown_escaped(running):
    r = running.command("file vendor=<!channel> product=<@U123> agency=ICE")
    assert "CR-1" in r.json["text"]
    view = running.bot.service.show(1)
    assert view.vendor == "<!channel>" and view.product == "<@U123>"
    parent = running.parent(1)
    assert "<!channel>" not in str(parent) and "&lt;!channel&gt;" in parent["text"]


def test_bad_signature_is_401_and_writes_nothing(running):
    import time

    assert running.slack.command(FILE_ICE, user_id=MEMBER, signature="v0=bad").status == 401
    assert running.slack.command(FILE_ICE, user_id=MEMBER, unsigned=True).status == 401
    assert running.slack.command(FILE_ICE, user_id=MEMBER, timestamp=int(time.time()) - 600).status == 401
    assert running.bot.service.list_contracts().total == 0


def test_healthz(running):
    from tests.support.slack_requests import healthz

    assert healthz(running.url)[0] == 200


def _state(**values):
    """Slack's view.state.values for the filing modal (block id == action id == field key)."""
    out = {}
    for key, value in values.items():
        if key in ("purpose", "third_party"):
            out[key] = {key: {"type": "static_select", "selected_option": {"value": value}}}
        else:
            out[key] = {key: {"type": "plain_text_input", "value": value}}
    return out


def test_bare_file_opens_the_filing_modal(running):
    r = running.command("file")
    assert r.status == 200
    running.double.wait_for(lambda d: len(d.views_opened()) == 1)
    view = running.double.views_opened()[0]
    assert view["callback_id"] == "file_contract_modal"
    required = {b["block_id"] for b in view["blocks"] if not b.get("optional")}
    assert required == {"vendor", "product", "agency"}


def test_modal_errors_are_shown_on_the_fields_and_nothing_is_filed(running):
    r = running.slack.view_submission(
        user_id=MEMBER,
        callback_id="file_contract_modal",
        view_id="V1",
        state_values=_state(
            vendor="",
            product="Graphite",
            agency="ICE",
            value="abc",
            awarded="2024-13-40",
            scope="SECRET//NOFORN details",
        ),
    )
    assert r.status == 200 and r.json["response_action"] == "errors"
    assert set(r.json["errors"]) == {"vendor", "value", "awarded", "scope"}
    assert running.bot.service.list_contracts().total == 0


def test_modal_submission_files_once_per_view(running):
    state = _state(
        vendor="Paragon Solutions",
        product="Graphite",
        agency="ICE",
        value="2,000,000",
        awarded="2024-09-27",
        purpose="operational",
        third_party="no",
    )
    first = running.slack.view_submission(
        user_id=MEMBER, callback_id="file_contract_modal", view_id="V9", state_values=state
    )
    again = running.slack.view_submission(
        user_id=MEMBER, callback_id="file_contract_modal", view_id="V9", state_values=state
    )
    assert first.json["response_action"] == "update" and "CR-1" in str(first.json["view"])
    assert "already filed" in str(again.json["view"])
    view = running.bot.service.show(1)
    assert view.value_cents == 200_000_000 and view.third_party is False
    assert running.bot.service.list_contracts().total == 1


def test_button_on_a_contract_that_no_longer_exists_is_answered_privately(running):
    url = running.double.new_response_url()
    r = running.slack.block_action(
        user_id=REVIEWER, action_id="answer_yes", value="999:SCOPE-1", response_url=url
    )
    assert r.status == 200
    running.double.wait_for(
        lambda d: any("CR-999" in (p["body"].get("text") or "") for p in d.responses(url))
    )
    assert running.bot.service.list_contracts().total == 0


def test_ten_thousand_character_argument_is_refused(running):
    r = running.command(f'file vendor="{"x" * 10_000}" product=P agency=A')
    assert "10,000" in r.json["text"] and running.bot.service.list_contracts().total == 0
