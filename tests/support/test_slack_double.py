"""Tests for the loopback Slack doubles: bot/console/slack.py (the console's Slack and the tests') and the Socket
Mode server in tests/support (real slack_sdk clients, real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.console.slack import Fault, SlackDouble
from tests.support.slack_requests import SlackRequester, healthz
from tests.support.socket_mode_double import SocketModeDouble, close_handler

SECRET = "test-signing-secret"


CHANNELS = ("CREVIEW", "C1", "C2")


@pytest.fixture
def double() -> Iterator[SlackDouble]:
    # Rate limits off: these tests check state, faults and payloads, posting faster than Slack allows; the
    # rate-limit tests below build their own double with the limits on.
    with SlackDouble(limits=False, invited=CHANNELS) as d:
        yield d


class FakeClock:
    """A monotonic clock a test steps by hand (the double's rate limits and response_url lifetimes)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def strict(clock: FakeClock) -> Iterator[SlackDouble]:
    """Slack's real rates (rate_scale=1) on a clock the test steps."""
    with SlackDouble(invited=CHANNELS, clock=clock) as d:
        yield d


def web(double: SlackDouble) -> WebClient:
    return WebClient(token="xoxb-test", base_url=double.api_url, retry_handlers=[])


def error_of(call: Callable[[], object]) -> SlackApiError:
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value


def section(text: str, **extra: object) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


@pytest.fixture
def client(double: SlackDouble) -> WebClient:
    # No retry handlers: each test opts into the behaviour it checks.
    return WebClient(token="xoxb-test", base_url=double.api_url, retry_handlers=[])


# ---------------------------------------------------------------------- Web API state
def test_post_update_thread_and_metadata_in_history(double: SlackDouble, client: WebClient) -> None:
    meta = {"event_type": "contract_review", "event_payload": {"review_id": 42}}
    parent = client.chat_postMessage(channel="CREVIEW", text="Review 42", metadata=meta)
    assert parent["ok"] and parent["channel"] == "CREVIEW" and parent["message"]["text"] == "Review 42"
    reply = client.chat_postMessage(channel="CREVIEW", text="step 1 done", thread_ts=parent["ts"])
    assert float(reply["ts"]) > float(parent["ts"])

    upd = client.chat_update(channel="CREVIEW", ts=parent["ts"], text="Review 42 (approved)")
    assert upd["ts"] == parent["ts"] and upd["message"]["text"] == "Review 42 (approved)"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="CREVIEW", ts="1.000000", text="nope")
    assert err.value.response["error"] == "message_not_found"

    stored = double.message("CREVIEW", parent["ts"])
    assert stored["text"] == "Review 42 (approved)"
    assert [e["text"] for e in stored["edits"]] == ["Review 42 (approved)"]
    assert [m["text"] for m in double.thread("CREVIEW", parent["ts"])] == [
        "Review 42 (approved)",
        "step 1 done",
    ]
    assert len(double.messages("CREVIEW")) == 2

    # history: top-level only, newest first, metadata only when asked
    plain = client.conversations_history(channel="CREVIEW")
    assert [m["ts"] for m in plain["messages"]] == [parent["ts"]]
    assert "metadata" not in plain["messages"][0]
    with_meta = client.conversations_history(channel="CREVIEW", include_all_metadata=True, limit=10)
    assert with_meta["messages"][0]["metadata"] == meta
    assert with_meta["messages"][0]["reply_count"] == 1
    later = client.chat_postMessage(channel="CREVIEW", text="another")
    newest_first = client.conversations_history(channel="CREVIEW")["messages"]
    assert [m["ts"] for m in newest_first] == [later["ts"], parent["ts"]]
    assert (
        client.conversations_history(channel="CREVIEW", oldest=parent["ts"])["messages"][0]["ts"]
        == later["ts"]
    )

    replies = client.conversations_replies(channel="CREVIEW", ts=parent["ts"])["messages"]
    assert [m["text"] for m in replies] == ["Review 42 (approved)", "step 1 done"]

    client.chat_delete(channel="CREVIEW", ts=later["ts"])
    assert [m["ts"] for m in double.messages("CREVIEW")] == [parent["ts"], reply["ts"]]


def test_auth_dm_ephemeral_users_and_unknown(double: SlackDouble, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["team_id"], auth["bot_id"]) == ("UBOT", "T1", "B1")

    dm1 = client.conversations_open(users="U1")["channel"]["id"]
    assert dm1.startswith("D") and client.conversations_open(users="U1")["channel"]["id"] == dm1
    assert client.conversations_open(users="U2")["channel"]["id"] != dm1
    client.chat_postMessage(channel="U1", text="to the DM")  # user id posts to the DM
    assert [m["text"] for m in double.messages(dm1)] == ["to the DM"]

    eph = client.chat_postEphemeral(channel="CREVIEW", user="U1", text="only you")
    assert eph["message_ts"]
    assert [e["text"] for e in double.ephemerals("U1")] == ["only you"] and double.ephemerals("U2") == []

    assert client.users_info(user="U1")["user"]["tz"] == "America/New_York"
    double.set_user("U9", tz="Europe/Paris")
    assert client.users_info(user="U9")["user"]["tz"] == "Europe/Paris"

    with pytest.raises(SlackApiError) as err:
        client.api_call("contracts.frobnicate")
    assert err.value.response["error"] == "unknown_method"
    assert double.calls("contracts.frobnicate")[0].status == 200

    with pytest.raises(SlackApiError) as err:
        WebClient(token="bogus", base_url=double.api_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"

    call = double.calls("chat.postEphemeral")[0]
    assert call.params["user"] == "U1" and call.headers["Authorization"] == "Bearer xoxb-test"


def test_a_persons_message_is_in_history_as_theirs(double: SlackDouble, client: WebClient) -> None:
    posted = double.add_user_message("C1", "U7", "vendor=Acme product=Spy")
    assert posted["user"] == "U7" and "bot_id" not in posted and "channel" not in posted
    history = client.conversations_history(channel="C1")["messages"]
    assert [(m["user"], m["text"]) for m in history] == [("U7", "vendor=Acme product=Spy")]
    assert "bot_id" not in history[0]


def test_views_and_home(double: SlackDouble, client: WebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "intake",
        "title": {"type": "plain_text", "text": "Intake"},
        "blocks": [section("Fill in the form")],
    }
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="", view=modal)
    assert err.value.response["error"] == "invalid_arguments"

    trigger = double.new_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=modal)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "intake"
    with pytest.raises(SlackApiError) as err:  # a trigger works once
        client.views_open(trigger_id=trigger, view=modal)
    assert err.value.response["error"] == "exchanged_trigger_id"

    updated = client.views_update(
        view_id=opened["id"], hash=opened["hash"], view={**modal, "private_metadata": "42"}
    )
    assert (
        updated["view"]["private_metadata"] == "42" and double.view(opened["id"])["private_metadata"] == "42"
    )
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)  # stale hash
    assert err.value.response["error"] == "hash_conflict"

    pushed = client.views_push(trigger_id=double.new_trigger_id(), view={**modal, "callback_id": "step2"})[
        "view"
    ]
    assert [v["callback_id"] for v in double.views_opened()] == ["intake", "step2"]
    assert double.views_opened()[1]["pushed"] and pushed["id"] != opened["id"]

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "v1"}}]}
    client.views_publish(user_id="U1", view=home)
    client.views_publish(user_id="U1", view={**home, "blocks": [section("v2")]})
    assert double.home_view("U1")["blocks"] == [section("v2")] and double.home_view("U2") is None
    assert [r.error for r in double.refusals()] == ["exchanged_trigger_id"]  # the one used twice on purpose


def test_files_upload_v2(double: SlackDouble, client: WebClient) -> None:
    resp = client.files_upload_v2(
        channel="CREVIEW",
        content=b"%PDF-1.4 report",
        filename="review-42.pdf",
        title="Review 42",
        initial_comment="Here is the report",
    )
    assert resp["file"]["title"] == "Review 42"
    (f,) = double.files()
    assert (f["title"], f["channel_id"], f["initial_comment"], f["content"]) == (
        "Review 42",
        "CREVIEW",
        "Here is the report",
        b"%PDF-1.4 report",
    )
    assert [c.method for c in double.calls()] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert double.messages("CREVIEW")[0]["files"][0]["id"] == f["id"]


def test_response_url_records_and_acts_on_original(double: SlackDouble, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="CREVIEW", text="Approve?")
    url = double.new_response_url(channel="CREVIEW", message_ts=posted["ts"], user="U1")
    hook = WebhookClient(url)
    assert hook.send(text="Working on it").status_code == 200  # ephemeral by default
    assert hook.send(text="Approved", replace_original=True).body == "ok"
    assert [r["body"]["text"] for r in double.responses(url)] == ["Working on it", "Approved"]
    assert double.ephemerals("U1")[0]["via"] == "response_url"
    assert double.message("CREVIEW", posted["ts"])["text"] == "Approved"


# ---------------------------------------------------------------------- payloads, as Slack checks them
@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "no_such_block"}],
        [{"type": "section"}],  # neither text nor fields
        [section("")],  # a text object holds 1..3000 characters
        [section("x" * 3001)],
        [section("ok", block_id="b" * 256)],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        [
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b" * 76}}
                ],
            }
        ],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}],
        [{"no_type": True}],
        {"type": "section"},  # not an array
        [section("ok")] * 51,
    ],
    ids=[
        "unknown-type",
        "section-without-text",
        "empty-text",
        "text-3001",
        "block_id-256",
        "11-fields",
        "field-2001",
        "header-151",
        "button-76",
        "context-3001",
        "no-type",
        "not-a-list",
        "51-blocks",
    ],
)
def test_invalid_blocks_are_refused_like_slack(
    double: SlackDouble, client: WebClient, blocks: object
) -> None:
    err = error_of(lambda: client.chat_postMessage(channel="C1", text="fallback", blocks=blocks))
    assert err.response.status_code == 200 and err.response["error"] == "invalid_blocks"
    assert err.response["response_metadata"]["messages"][0].startswith("[ERROR] ")
    assert double.messages() == []
    (refusal,) = double.refusals()
    assert (refusal.method, refusal.error, refusal.kind, refusal.channel) == (
        "chat.postMessage",
        "invalid_blocks",
        "payload",
        "C1",
    )
    assert double.unexpected_refusals() == [refusal]
    double.expect_refusals("invalid_blocks")
    assert double.unexpected_refusals() == []


def test_limits_at_their_edge_are_accepted(double: SlackDouble, client: WebClient) -> None:
    blocks = [section("x" * 240) for _ in range(50)]  # 50 blocks, 12,000 characters
    posted = client.chat_postMessage(channel="C1", text="t" * 40_000, blocks=blocks)
    fields = [{"type": "mrkdwn", "text": "f" * 2000}] * 5 + [{"type": "plain_text", "text": "p"}] * 5
    client.chat_update(
        channel="C1",
        ts=posted["ts"],
        text="edited",
        blocks=[
            {"type": "section", "fields": fields, "block_id": "b" * 255},
            section("x" * 1995),
        ],  # 12,000 characters in all
    )
    home = {"type": "home", "blocks": [section("x" * 3000)] + [{"type": "divider"}] * 99}
    client.views_publish(user_id="U1", view=home)
    assert double.refusals() == [] and len(double.messages("C1")) == 1


def test_message_text_limits(double: SlackDouble, client: WebClient) -> None:
    over = [section("x" * 3000)] * 4 + [section("y")]  # 12,001 characters of text
    err = error_of(lambda: client.chat_postMessage(channel="C1", text="fallback", blocks=over))
    assert err.response["error"] == "msg_blocks_too_long"
    posted = client.chat_postMessage(channel="C1", text="fallback", blocks=over[:4])
    assert error_of(
        lambda: client.chat_update(channel="C1", ts=posted["ts"], text="x", blocks=over)
    ).response["error"] == ("msg_blocks_too_long")
    assert error_of(
        lambda: client.chat_postEphemeral(channel="C1", user="U1", text="x", blocks=over)
    ).response["error"] == ("msg_blocks_too_long")
    # the fields and context texts count too
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 6}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]}
    assert error_of(
        lambda: client.chat_postMessage(channel="C1", text="x", blocks=[fields, context])
    ).response["error"] == ("msg_blocks_too_long")
    assert error_of(lambda: client.chat_postMessage(channel="C1", text="t" * 40_001)).response["error"] == (
        "msg_too_long"
    )
    assert [r.error for r in double.refusals()] == [
        "msg_blocks_too_long",
        "msg_blocks_too_long",
        "msg_blocks_too_long",
        "msg_blocks_too_long",
        "msg_too_long",
    ]
    assert [m["text"] for m in double.messages("C1")] == ["fallback"] and double.ephemerals() == []
    assert double.message("C1", posted["ts"])["edits"] == []


def _modal(**changes: object) -> dict:
    view = {
        "type": "modal",
        "callback_id": "intake",
        "title": {"type": "plain_text", "text": "File a contract"},
        "submit": {"type": "plain_text", "text": "File"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "vendor",
                "label": {"type": "plain_text", "text": "Vendor"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    view.update(changes)
    return {k: v for k, v in view.items() if v is not None}


@pytest.mark.parametrize(
    "view",
    [
        _modal(title={"type": "plain_text", "text": "t" * 25}),
        _modal(submit={"type": "plain_text", "text": "s" * 25}),
        _modal(close={"type": "plain_text", "text": "c" * 25}),
        _modal(private_metadata="m" * 3001),
        _modal(callback_id="c" * 256),
        _modal(submit=None),  # input blocks need a submit button
        _modal(title=None),
        _modal(blocks=[section("x")] * 101),
        _modal(blocks=[{"type": "no_such_block"}]),
        _modal(blocks=[section("x" * 3001)]),
        _modal(type="home"),
        "not a view",
    ],
    ids=[
        "title-25",
        "submit-25",
        "close-25",
        "metadata-3001",
        "callback_id-256",
        "input-without-submit",
        "no-title",
        "101-blocks",
        "unknown-block",
        "text-3001",
        "home-in-views.open",
        "not-an-object",
    ],
)
def test_invalid_modals_are_refused_like_slack(double: SlackDouble, client: WebClient, view: object) -> None:
    trigger = double.new_trigger_id()
    err = error_of(lambda: client.views_open(trigger_id=trigger, view=view))
    assert err.response["error"] == "invalid_arguments" and double.views_opened() == []
    assert [(r.method, r.kind) for r in double.refusals()] == [("views.open", "payload")]
    assert client.views_open(trigger_id=trigger, view=_modal())[
        "ok"
    ]  # the refused call did not use the trigger


def test_views_publish_update_push_and_response_url_are_checked(
    double: SlackDouble, client: WebClient
) -> None:
    err = error_of(lambda: client.views_publish(user_id="U1", view={"type": "home", "blocks": [section("")]}))
    assert err.response["error"] == "invalid_arguments" and double.home_view("U1") is None
    err = error_of(lambda: client.views_publish(user_id="U1", view=_modal()))
    assert err.response["error"] == "invalid_arguments"
    opened = client.views_open(trigger_id=double.new_trigger_id(), view=_modal())["view"]
    err = error_of(
        lambda: client.views_update(view_id=opened["id"], view=_modal(private_metadata="m" * 3001))
    )
    assert (
        err.response["error"] == "invalid_arguments" and double.view(opened["id"])["private_metadata"] == ""
    )
    err = error_of(lambda: client.views_push(trigger_id=double.new_trigger_id(), view=_modal(blocks=[])))
    assert err.response["error"] == "invalid_arguments"

    url = double.new_response_url(channel="C1", user="U1")
    answer = WebhookClient(url).send(text="too long", blocks=[section("x" * 3000)] * 4 + [section("y")])
    assert (answer.status_code, answer.body) == (400, "msg_blocks_too_long")
    answer = WebhookClient(url).send(text="bad", blocks=[{"type": "no_such_block"}])
    assert (answer.status_code, answer.body) == (400, "invalid_blocks")
    assert double.responses(url) == [] and double.ephemerals() == []
    assert [r.method for r in double.refusals()] == [
        "views.publish",
        "views.publish",
        "views.update",
        "views.push",
        "response_url",
        "response_url",
    ]
    assert "refused as Slack would: 6" in double.summary()


# ---------------------------------------------------------------------- rate limits
def test_post_burst_then_one_per_second_per_channel(strict: SlackDouble, clock: FakeClock) -> None:
    client = web(strict)
    for i in range(3):  # the burst
        client.chat_postMessage(channel="C1", text=f"burst {i}")
    err = error_of(lambda: client.chat_postMessage(channel="C1", text="too soon"))
    assert (err.response.status_code, err.response["error"]) == (429, "ratelimited")
    assert err.response.headers["Retry-After"] == "1"
    clock.advance(0.99)
    assert (
        error_of(lambda: client.chat_postMessage(channel="C1", text="still too soon")).response.status_code
        == 429
    )
    clock.advance(0.02)
    client.chat_postMessage(channel="C1", text="a second later")
    # another channel has its own bucket
    for i in range(3):
        client.chat_postMessage(channel="C2", text=f"C2 {i}")
    assert len(strict.messages("C1")) == 4 and len(strict.messages("C2")) == 3
    assert [(r.method, r.bucket, r.channel, r.retry_after) for r in strict.rate_limited()] == [
        ("chat.postMessage", "channel C1", "C1", 1),
        ("chat.postMessage", "channel C1", "C1", 1),
    ]
    assert strict.rate_limited(channel="C2") == [] and strict.rate_limited_counts() == {
        "chat.postMessage channel C1": 2
    }
    limited = strict.calls("chat.postMessage")[3]
    assert (limited.status, limited.retry_after, limited.limit, limited.fault) == (
        429,
        1.0,
        "channel C1",
        None,
    )
    assert "rate-limited (429) by the double: 2" in strict.summary()
    # refused calls change nothing; the DM of a user is a channel of its own
    assert [m["text"] for m in strict.messages("C1")][-1] == "a second later"
    for i in range(3):
        client.chat_postMessage(channel="U1", text=f"dm {i}")
    assert error_of(lambda: client.chat_postMessage(channel="U1", text="dm 4")).response.status_code == 429
    assert strict.rate_limited()[-1].bucket == f"channel {strict.dm_channel('U1')}"


def test_workspace_wide_post_cap(strict: SlackDouble, clock: FakeClock) -> None:
    client = web(strict)
    channels = [f"CW{i}" for i in range(12)]
    for ch in channels:
        strict.invite(ch)
    for i in range(30):  # 30 posts over 12 channels: within each channel's burst and the workspace's
        client.chat_postMessage(channel=channels[i % 10], text=str(i))
    err = error_of(lambda: client.chat_postMessage(channel=channels[11], text="31st"))
    assert err.response.status_code == 429 and strict.rate_limited()[0].bucket == "workspace"
    clock.advance(60 / 300 + 0.01)  # 300 a minute
    client.chat_postMessage(channel=channels[11], text="31st, later")


def test_tiers_and_retry_after_in_whole_seconds(strict: SlackDouble, clock: FakeClock) -> None:
    client = web(strict)
    posted = client.chat_postMessage(channel="C1", text="v0")
    for i in range(5):  # Tier 3: burst 5, then 50 a minute
        client.chat_update(channel="C1", ts=posted["ts"], text=f"v{i + 1}")
    err = error_of(lambda: client.chat_update(channel="C1", ts=posted["ts"], text="v6"))
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "2"  # 1.2 s, rounded up
    assert strict.calls("chat.update")[-1].limit == "tier 3"
    clock.advance(1.2)
    client.chat_update(channel="C1", ts=posted["ts"], text="v6")
    # Tier 3 for conversations.*, per method: chat.update's bucket is not theirs
    for _ in range(5):
        client.conversations_info(channel="C1")
    assert error_of(lambda: client.conversations_info(channel="C1")).response.status_code == 429
    # Tier 4: burst 10, 100 a minute -> 0.6 s -> Retry-After 1
    for _ in range(10):
        client.users_info(user="U1")
    err = error_of(lambda: client.users_info(user="U1"))
    assert err.response.headers["Retry-After"] == "1"
    # auth.test is not limited
    for _ in range(200):
        client.auth_test()
    assert {r.method: r.bucket for r in strict.rate_limited()} == {
        "chat.update": "tier 3",
        "conversations.info": "tier 3",
        "users.info": "tier 4",
    }
    # an impatient caller is seen
    client.chat_postMessage(channel="C2", text="x")
    assert strict.retry_after_violations("users.info") == []
    assert error_of(lambda: client.users_info(user="U1")).response.status_code == 429
    assert len(strict.retry_after_violations("users.info")) == 1


def test_rate_scale_refills_faster_with_the_same_burst(clock: FakeClock) -> None:
    with SlackDouble(rate_scale=20, invited=["C1"], clock=clock) as double:
        client = web(double)
        for i in range(3):
            client.chat_postMessage(channel="C1", text=str(i))
        err = error_of(lambda: client.chat_postMessage(channel="C1", text="3"))
        assert err.response.headers["Retry-After"] == "1"  # whole seconds, at least 1, whatever the scale
        clock.advance(0.049)  # one token takes 1/20 s
        assert error_of(lambda: client.chat_postMessage(channel="C1", text="3")).response.status_code == 429
        clock.advance(0.002)
        client.chat_postMessage(channel="C1", text="3")
        clock.advance(10)  # a long pause refills the burst, no more
        for i in range(3):
            client.chat_postMessage(channel="C1", text=f"again {i}")
        assert error_of(lambda: client.chat_postMessage(channel="C1", text="x")).response.status_code == 429


def test_rate_scale_on_the_real_clock() -> None:
    with SlackDouble(rate_scale=20, invited=["C1"]) as double:
        client = web(double)
        sent = 0
        deadline = time.monotonic() + 20
        while sent < 10 and time.monotonic() < deadline:  # 10 posts: 3 at once, then one per 1/20 s
            try:
                client.chat_postMessage(channel="C1", text=str(sent))
                sent += 1
            except SlackApiError as e:
                assert e.response.status_code == 429
                time.sleep(0.06)
        assert len(double.messages("C1")) == 10
        assert 1 <= len(double.rate_limited()) <= 10  # the burst ran out at least once


def test_limits_off_and_scripted_faults_on_top(clock: FakeClock) -> None:
    # Limits off on purpose: this test checks that the switch works.
    with SlackDouble(limits=False, invited=["C1"], clock=clock) as double:
        client = web(double)
        for i in range(20):
            client.chat_postMessage(channel="C1", text=str(i))
        assert double.rate_limited() == [] and len(double.messages("C1")) == 20
    with SlackDouble(invited=["C1"], clock=clock) as double:
        client = web(double)
        double.script("chat.postMessage", [Fault(status=429, retry_after=7)])
        err = error_of(lambda: client.chat_postMessage(channel="C1", text="scripted"))
        assert err.response.headers["Retry-After"] == "7"
        for i in range(3):  # the scripted 429 took no token
            client.chat_postMessage(channel="C1", text=str(i))
        assert double.rate_limited() == []  # scripted faults are not the double's limits
        assert [c.fault for c in double.calls("chat.postMessage")] == ["429", None, None, None]


# ---------------------------------------------------------------------- channels
def test_channel_membership(double: SlackDouble, client: WebClient) -> None:
    err = error_of(lambda: client.chat_postMessage(channel="CNOTIN", text="hello"))
    assert err.response["error"] == "not_in_channel" and double.messages() == []
    posted = client.chat_postMessage(channel="C1", text="hello")
    double.remove("C1")  # kicked
    for call in (
        lambda: client.chat_postMessage(channel="C1", text="again"),
        lambda: client.chat_postMessage(channel="C1", text="reply", thread_ts=posted["ts"]),
        lambda: client.chat_update(channel="C1", ts=posted["ts"], text="edited"),
        lambda: client.conversations_history(channel="C1"),
        lambda: client.conversations_replies(channel="C1", ts=posted["ts"]),
        lambda: client.chat_postEphemeral(channel="C1", user="U1", text="psst"),
    ):
        assert error_of(call).response["error"] == "not_in_channel"
    assert not double.is_member("C1")
    info = client.conversations_info(channel="C1")["channel"]
    assert (info["id"], info["name"], info["is_member"], info["is_archived"], info["is_channel"]) == (
        "C1",
        "c1",
        False,
        False,
        True,
    )
    double.invite("C1")
    assert client.conversations_info(channel="C1")["channel"]["is_member"] is True
    client.chat_update(channel="C1", ts=posted["ts"], text="edited")

    double.archive("C1")
    err = error_of(lambda: client.chat_postMessage(channel="C1", text="archived"))
    assert err.response["error"] == "is_archived"
    assert client.conversations_info(channel="C1")["channel"]["is_archived"] is True
    double.unarchive("C1")
    client.chat_postMessage(channel="C1", text="back")

    double.delete_channel("CGONE")
    assert error_of(lambda: client.chat_postMessage(channel="CGONE", text="x")).response["error"] == (
        "channel_not_found"
    )
    assert (
        error_of(lambda: client.conversations_info(channel="CGONE")).response["error"] == "channel_not_found"
    )

    double.invite("GPRIV", name="contracts-private", private=True)
    info = client.conversations_info(channel="GPRIV")["channel"]
    assert (info["name"], info["is_private"], info["is_channel"], info["is_member"]) == (
        "contracts-private",
        True,
        False,
        True,
    )
    # users and DMs need no invitation
    client.chat_postMessage(channel="U7", text="dm by user id")
    dm = client.conversations_open(users="U8")["channel"]["id"]
    client.chat_postMessage(channel=dm, text="dm by channel id")
    assert client.conversations_info(channel=dm)["channel"]["is_im"] is True
    assert [(r.error, r.kind, r.channel) for r in double.refusals()][:2] == [
        ("not_in_channel", "channel", "CNOTIN"),
        ("not_in_channel", "channel", "C1"),
    ]
    assert [r.error for r in double.refusals()].count("not_in_channel") == 7
    assert double.unexpected_refusals() == []  # channel refusals are scenarios, not payload bugs


def test_conversations_open_is_stable_and_counted(double: SlackDouble, client: WebClient) -> None:
    first = client.conversations_open(users="U1")["channel"]["id"]
    assert client.conversations_open(users="U1")["channel"]["id"] == first == double.dm_channel("U1")
    client.conversations_open(users="U2")
    assert (double.dm_opens("U1"), double.dm_opens("U2"), double.dm_opens()) == (2, 1, 3)


@pytest.mark.parametrize(
    "workspace_url", ["https://contract-bot-test.slack.com/", "https://dhs-ice.enterprise.slack-gov.com"]
)
def test_permalink_and_auth_test_use_the_workspace_url(workspace_url: str) -> None:
    kwargs = {} if workspace_url.endswith(".slack.com/") else {"workspace_url": workspace_url}
    with SlackDouble(invited=["C1"], **kwargs) as double:  # type: ignore[arg-type]
        client = web(double)
        base = workspace_url.rstrip("/") + "/"
        assert client.auth_test()["url"] == base
        posted = client.chat_postMessage(channel="C1", text="parent")
        link = client.chat_getPermalink(channel="C1", message_ts=posted["ts"])
        assert link["channel"] == "C1"
        assert link["permalink"] == f"{base}archives/C1/p{posted['ts'].replace('.', '')}"
        assert error_of(lambda: client.chat_getPermalink(channel="C1", message_ts="1.2")).response[
            "error"
        ] == ("message_not_found")


def test_response_url_takes_five_posts_within_thirty_minutes(strict: SlackDouble, clock: FakeClock) -> None:
    url = strict.new_response_url(channel="C1", user="U1")
    hook = WebhookClient(url)
    assert [hook.send(text=f"answer {i}").status_code for i in range(5)] == [200] * 5
    sixth = hook.send(text="answer 6")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert len(strict.responses(url)) == 5
    late = strict.new_response_url(channel="C1", user="U1")
    clock.advance(30 * 60 + 1)
    answer = WebhookClient(late).send(text="too late")
    assert (answer.status_code, answer.body) == (404, "expired_url")
    assert [(r.error, r.kind) for r in strict.refusals()] == [
        ("used_url", "response_url"),
        ("expired_url", "response_url"),
    ]
    for i in range(10):  # not a Web API call: no rate limit
        WebhookClient(strict.new_response_url(channel="C1", user="U1")).send(text=str(i))
    assert strict.rate_limited() == []


# ---------------------------------------------------------------------- triggers
def test_triggers_expire_in_real_time_and_work_once() -> None:
    with SlackDouble(rate_scale=20, trigger_ttl=1.0) as double:
        client = web(double)
        err = error_of(lambda: client.views_open(trigger_id="12345.98765.abcd", view=_modal()))
        assert err.response["error"] == "invalid_trigger_id"
        kept = double.new_trigger_id()
        late = double.new_trigger_id()
        time.sleep(0.3)  # longer than a 1 s trigger life divided by the rate scale: rate_scale does not apply
        assert client.views_open(trigger_id=kept, view=_modal())["ok"]
        assert error_of(lambda: client.views_open(trigger_id=kept, view=_modal())).response["error"] == (
            "exchanged_trigger_id"
        )
        time.sleep(0.8)
        assert error_of(lambda: client.views_open(trigger_id=late, view=_modal())).response["error"] == (
            "expired_trigger_id"
        )
        assert [(r.error, r.kind) for r in double.refusals()] == [
            ("invalid_trigger_id", "trigger"),
            ("exchanged_trigger_id", "trigger"),
            ("expired_trigger_id", "trigger"),
        ]


# ---------------------------------------------------------------------- faults
def test_scripted_429_is_honoured_by_rate_limit_handler(double: SlackDouble) -> None:
    double.script("chat.postMessage", [Fault(status=429, retry_after=1)])
    client = WebClient(
        token="xoxb-test",
        base_url=double.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert client.chat_postMessage(channel="C1", text="once")["ok"]
    limited, ok = double.calls("chat.postMessage")
    assert (limited.status, limited.retry_after, limited.fault) == (429, 1.0, "429")
    assert ok.status == 200 and ok.at - limited.at >= 1.0
    assert double.retry_after_violations() == []
    assert [m["text"] for m in double.messages("C1")] == ["once"]  # the 429'd call posted nothing


def test_429_without_handler_and_early_retry_is_a_violation(double: SlackDouble, client: WebClient) -> None:
    double.script("chat.postMessage", [Fault(status=429, retry_after=30)])
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "30"
    client.chat_postMessage(channel="C1", text="x")  # impatient retry
    (v,) = double.retry_after_violations("chat.postMessage")
    assert v.retry_after == 30 and v.early_by > 29
    assert double.retry_after_violations("chat.update") == []


def test_503_retried_by_server_error_handler(double: SlackDouble) -> None:
    double.script("chat.postMessage", [Fault(status=503)])
    client = WebClient(
        token="xoxb-test",
        base_url=double.api_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)],
    )
    assert client.chat_postMessage(channel="C1", text="after 503")["ok"]
    assert [c.status for c in double.calls("chat.postMessage")] == [503, 200]
    assert len(double.messages("C1")) == 1


def test_faulted_calls_do_not_change_state(double: SlackDouble, client: WebClient) -> None:
    double.fail_share(1.0, kinds=("503",), methods=["chat.postMessage"])
    for _ in range(3):
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel="C1", text="lost")
    client.auth_test()  # not in `methods`: unaffected
    assert double.messages() == [] and [c.status for c in double.calls("chat.postMessage")] == [503] * 3
    double.fail_share(0)
    client.chat_postMessage(channel="C1", text="kept")
    assert [m["text"] for m in double.messages()] == ["kept"]

    double.script("chat.postMessage", [Fault(status=200, body={"ok": False, "error": "channel_not_found"})])
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="canned")
    assert err.value.response["error"] == "channel_not_found" and len(double.messages()) == 1

    # a dropped connection: the default ConnectionErrorRetryHandler retries once, one post results
    double.script("chat.postMessage", [Fault(drop=True)])
    WebClient(token="xoxb-test", base_url=double.api_url).chat_postMessage(channel="C1", text="after drop")
    assert [c.status for c in double.calls("chat.postMessage")][-2:] == [0, 200]
    assert [m["text"] for m in double.messages()] == ["kept", "after drop"]


def test_fail_share_is_seeded_and_delay_and_latency(double: SlackDouble, client: WebClient) -> None:
    def pattern() -> list[str | None]:
        double.reset()
        double.fail_share(0.5, kinds=("429", "503"), seed=7)
        for _ in range(12):
            try:
                client.auth_test()
            except SlackApiError:
                pass
        return [c.fault for c in double.calls()]

    first = pattern()
    assert first == pattern() and None in first and set(first) - {None}

    double.reset()
    double.script("auth.test", [Fault(delay=0.3)])
    t0 = time.monotonic()
    assert client.auth_test()["ok"] and time.monotonic() - t0 >= 0.3
    double.latency = 0.2
    t0 = time.monotonic()
    client.auth_test()
    assert time.monotonic() - t0 >= 0.2


# ---------------------------------------------------------------------- waiting
def test_wait_for_wakes_on_request_and_explains_timeout(double: SlackDouble, client: WebClient) -> None:
    t = threading.Thread(target=lambda: client.chat_postMessage(channel="C1", text="from a thread"))
    t.start()
    assert double.wait_for(lambda d: len(d.messages("C1")) == 1, timeout=5)
    assert double.wait_for_calls("chat.postMessage", 1)[0].status == 200
    t.join()

    def two_messages_in_c2(d: SlackDouble) -> bool:
        return len(d.messages("C2")) == 2

    t0 = time.monotonic()
    with pytest.raises(AssertionError) as err:
        double.wait_for(two_messages_in_c2, timeout=0.2)
    assert time.monotonic() - t0 < 2
    text = str(err.value)
    assert "two_messages_in_c2" in text and "chat.postMessage -> 200" in text and "'C1': 1" in text


# ---------------------------------------------------------------------- signed requests
class _Receiver(BaseHTTPRequestHandler):
    """A tiny receiver that verifies Slack signatures with slack_sdk's SignatureVerifier."""

    verifier = SignatureVerifier(SECRET)
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._answer(200, b"ok")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = self.verifier.is_valid_request(body, dict(self.headers))
        self.seen.append({"body": body, "headers": dict(self.headers), "valid": ok})
        self._answer(200 if ok else 401, b'{"ok": true}' if ok else b'{"error": "invalid request"}')

    def _answer(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_requester_signs_like_slack(receiver: str, double: SlackDouble) -> None:
    req = SlackRequester(receiver, SECRET, double=double)
    assert healthz(receiver) == (200, "ok")

    r = req.command("status 42", user_id="U1")
    assert (r.status, r.json) == (200, {"ok": True})
    form = {k: v[0] for k, v in parse_qs(_Receiver.seen[-1]["body"].decode()).items()}
    assert form["command"] == "/contract" and form["text"] == "status 42" and form["team_id"] == "T1"
    assert form["response_url"].startswith(double.base_url + "/response/")

    assert (
        req.block_action(
            user_id="U1",
            action_id="approve",
            value="42",
            message={"ts": "1.2", "channel": "CREVIEW", "text": "x"},
        ).status
        == 200
    )
    payload = json.loads(parse_qs(_Receiver.seen[-1]["body"].decode())["payload"][0])
    assert payload["type"] == "block_actions" and payload["actions"][0]["action_id"] == "approve"
    assert payload["container"]["message_ts"] == "1.2"
    assert (
        req.view_submission(
            user_id="U1", callback_id="intake", state_values={"b": {"a": {"value": "v"}}}
        ).status
        == 200
    )
    assert (
        req.message_shortcut(
            user_id="U1", callback_id="review", message={"ts": "1.2", "text": "x"}, channel_id="CREVIEW"
        ).status
        == 200
    )
    assert req.event({"type": "app_mention", "user": "U1", "text": "<@UBOT> hi"}, retry_num=1).status == 200
    assert _Receiver.seen[-1]["headers"]["X-Slack-Retry-Num"] == "1"
    assert _Receiver.seen[-1]["headers"]["X-Slack-Retry-Reason"] == "http_timeout"

    # every way of breaking the signature is refused
    assert req.command("x", user_id="U1", tamper=lambda b: b.replace(b"x", b"y")).status == 401
    assert req.command("x", user_id="U1", timestamp=time.time() - 600).status == 401
    assert req.command("x", user_id="U1", signature="v0=" + "0" * 64).status == 401
    assert req.command("x", user_id="U1", unsigned=True).status == 401
    assert req.raw(b'{"type": "x"}', "application/json").status == 200
    assert [s["valid"] for s in _Receiver.seen[-5:]] == [False, False, False, False, True]


# ---------------------------------------------------------------------- Socket Mode
def test_socket_mode_round_trip_with_bolt(double: SlackDouble) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app = App(client=WebClient(token="xoxb-test", base_url=double.api_url), token_verification_enabled=False)

    @app.command("/contract")
    def contract(ack, command, respond, say) -> None:  # noqa: ANN001 - bolt injects by name
        ack(text=f"got {command['text']}")
        say(channel=command["channel_id"], text="working")
        respond("done")

    with SocketModeDouble(double) as sm:
        handler = SocketModeHandler(app, app_token="xapp-1-test")
        handler.connect()
        try:
            assert sm.connected.wait(5)
            url = double.new_response_url(channel="CREVIEW", user="U1")
            eid = sm.send_envelope(
                "slash_commands",
                {
                    "command": "/contract",
                    "text": "status 42",
                    "user_id": "U1",
                    "channel_id": "CREVIEW",
                    "team_id": "T1",
                    "api_app_id": "A1",
                    "response_url": url,
                    "trigger_id": double.new_trigger_id(),
                },
            )
            ack = sm.wait_for_ack(eid, timeout=5)
            assert ack["envelope_id"] == eid and ack["payload"]["text"] == "got status 42"
            double.wait_for(lambda d: d.responses(url) and d.messages("CREVIEW"), timeout=5)
            assert double.responses(url)[0]["body"]["text"] == "done"
            assert double.calls("apps.connections.open")[0].headers["Authorization"] == "Bearer xapp-1-test"
        finally:
            close_handler(handler)
