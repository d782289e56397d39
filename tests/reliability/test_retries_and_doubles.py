"""Slack's retries and users' double actions take effect once: Events API retries (same event_id, with
X-Slack-Retry-Num), double-clicked answer buttons, and double-submitted filing modals."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import MEMBER, REVIEW, REVIEWER
from tests.reliability.support import audit_rows, counts, file_form_state, question_ts, settle


def _home_event(user: str) -> dict:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D1",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }


def _parallel(fns):
    with ThreadPoolExecutor(max_workers=len(fns)) as pool:
        return [f.result() for f in [pool.submit(fn) for fn in fns]]


def test_event_retries_take_effect_once(running):
    tried = 0
    events = [f"EvRETRY{i:04d}" for i in range(6)]
    for event_id in events[:3]:  # the original, then Slack's retries 1, 2 and 3 (one after another)
        body = _home_event(MEMBER)
        for retry in (None, 1, 2, 3):
            r = running.slack.event(
                body,
                event_id=event_id,
                retry_num=retry,
                retry_reason=None if retry is None else "http_timeout",
            )
            tried += 1
            assert r.status == 200, r.body
    for event_id in events[3:]:  # the original and its retries arriving at once (a slow first answer)
        body = _home_event(REVIEWER)
        results = _parallel(
            [
                lambda n=n, b=body, e=event_id: running.slack.event(b, event_id=e, retry_num=n or None)
                for n in range(4)
            ]
        )
        tried += len(results)
        assert all(r.status == 200 for r in results), [r.body for r in results]
    settle(running)
    assert tried == 24
    assert len(running.double.calls("views.publish")) == len(events)  # once per event_id
    assert counts(running)["seen_request"] == len(events)
    # a new event_id for the same user is a new delivery and is acted on
    assert running.slack.event(_home_event(MEMBER), event_id="EvRETRYNEW").status == 200
    settle(running)
    assert len(running.double.calls("views.publish")) == len(events) + 1


def _click(running, action: str, qid: str, ts: str):
    return running.slack.block_action(
        user_id=REVIEWER,
        action_id=action,
        value=f"1:{qid}",
        message={"ts": ts, "channel": REVIEW},
        channel_id=REVIEW,
    )


def test_double_clicked_same_answer_records_one_answer(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    clicks = 0
    qids = [f"SCOPE-{i}" for i in range(2, 6)]
    for qid in qids:
        ts = question_ts(running, 1, qid)
        results = _parallel([lambda q=qid, t=ts: _click(running, "answer_yes", q, t)] * 2)  # a double click
        results.append(_click(running, "answer_yes", qid, ts))  # and an impatient third click
        clicks += len(results)
        assert all(r.status == 200 for r in results)
    settle(running)
    assert clicks == 3 * len(qids)
    answers = [json.loads(a["after"]) for a in audit_rows(running, "answer")]
    assert sorted(a["qid"] for a in answers) == sorted(qids), (
        answers
    )  # no duplicate entry for an identical click
    view = running.bot.service.show(1)
    assert view.answered == len(qids)
    for qid in qids:
        message = running.double.message(REVIEW, question_ts(running, 1, qid))
        assert "Answer: Yes" in json.dumps(message["blocks"])


def test_two_different_answers_quickly_leave_one_consistent_answer(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    clicks = 0
    pairs = {
        "SCOPE-2": ("answer_yes", "answer_no"),
        "SCOPE-3": ("answer_no", "answer_unknown"),
        "SCOPE-4": ("answer_unknown", "answer_yes"),
        "SCOPE-5": ("answer_yes", "answer_unknown"),
    }
    for qid, (first, second) in pairs.items():
        ts = question_ts(running, 1, qid)
        results = _parallel(
            [
                lambda a=first, q=qid, t=ts: _click(running, a, q, t),
                lambda a=second, q=qid, t=ts: _click(running, a, q, t),
            ]
        )
        clicks += 2
        assert all(r.status == 200 for r in results)
    settle(running)
    assert clicks == 8
    view = running.bot.service.show(1)
    entries = [json.loads(a["after"]) for a in audit_rows(running, "answer")]
    for qid, (first, second) in pairs.items():
        stored = view.question(qid).answer
        assert stored in (first.removeprefix("answer_"), second.removeprefix("answer_"))
        mine = [e for e in entries if e["qid"] == qid]
        assert 1 <= len(mine) <= 2 and mine[-1]["answer"] == stored, (
            mine
        )  # the audit ends on the stored answer
        shown = json.dumps(running.double.message(REVIEW, question_ts(running, 1, qid))["blocks"])
        assert f"Answer: {stored.capitalize()}" in shown, shown  # Slack shows what the database holds
    parent = running.parent(1)
    assert f"answered {view.answered} of" in parent["text"]


def test_double_submitted_filing_modal_files_once(running):
    tried = 0
    acks = []
    for n in range(3):
        view_id = f"VDOUBLE{n}"
        # a product per view: three views of one contract would be a look-alike ("file anyway?")
        state = file_form_state(
            vendor="Paragon", product=f"Graphite-{n}", agency="ICE", purpose="operational"
        )
        if n == 0:  # one after another: the second submission is the same view
            results = [
                running.slack.view_submission(
                    user_id=MEMBER, callback_id="file_contract_modal", state_values=state, view_id=view_id
                )
                for _ in range(2)
            ]
        else:  # at the same moment
            results = _parallel(
                [
                    lambda v=view_id, st=state: running.slack.view_submission(
                        user_id=MEMBER, callback_id="file_contract_modal", state_values=st, view_id=v
                    )
                ]
                * 3
            )
        tried += len(results)
        assert all(r.status == 200 for r in results), [r.body for r in results]
        acks += [r.json for r in results]
    settle(running)
    assert tried == 8
    assert counts(running)["contract"] == 3  # one per view.id
    assert len(audit_rows(running, "file")) == 3
    texts = [json.dumps(a) for a in acks]
    late = [t for t in texts if "Filing…" in t]  # a slow (loaded) database: the answer follows in a DM
    if late:
        running.double.wait_for(
            lambda d: (
                len([c for c in d.calls("chat.postMessage") if c.params.get("channel") == MEMBER])
                >= len(late)
            )
        )
        texts = [t for t in texts if t not in late] + [
            c.params.get("text", "")
            for c in running.double.calls("chat.postMessage")
            if c.params.get("channel") == MEMBER
        ]
    assert len(texts) == tried
    assert not any("Something went wrong" in t for t in texts), (
        texts
    )  # a repeat is told it was filed, not an error
    assert all("CR-" in t for t in texts), texts
    assert (
        len([m for m in running.double.messages(REVIEW) if m.get("thread_ts") in (None, m["ts"])]) == 3
    )  # one parent each
