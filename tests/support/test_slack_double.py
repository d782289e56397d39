"""Tests for the loopback Slack doubles in tests/support (real slack_sdk clients, real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.support.slack_double import Fault, SlackDouble
from tests.support.slack_requests import SlackRequester, healthz
from tests.support.socket_mode_double import SocketModeDouble

SECRET = "test-signing-secret"


@pytest.fixture
def double() -> Iterator[SlackDouble]:
    with SlackDouble() as d:
        yield d


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


def test_views_and_home(double: SlackDouble, client: WebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "intake",
        "title": {"type": "plain_text", "text": "Intake"},
        "blocks": [],
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
    client.views_publish(user_id="U1", view={**home, "blocks": []})
    assert double.home_view("U1")["blocks"] == [] and double.home_view("U2") is None


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
            handler.close()
