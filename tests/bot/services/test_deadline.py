"""The request runner's deadline counts from the request's arrival: time a request spent before its work started (a
burst of requests on a busy machine) comes off what its work may take, so the answer still reaches Slack in time."""

from __future__ import annotations

import threading
import time

import pytest

from bot.services.deadline import NothingRecorded, RequestRunner, request_arrived


@pytest.fixture
def runner():
    r = RequestRunner(threads=2, deadline=2.0)
    yield r
    r.shutdown()


def test_work_within_the_deadline_gives_its_result(runner):
    with request_arrived():
        assert runner.run(lambda: 42) == 42


def test_time_before_the_work_comes_off_its_deadline(runner):
    release = threading.Event()
    started = time.monotonic()
    with request_arrived(started - 1.5), pytest.raises(NothingRecorded):  # arrived 1.5 s ago: 0.5 s are left
        runner.run(release.wait)
    waited = time.monotonic() - started
    release.set()
    assert 0.45 <= waited < 1.9  # not the whole 2 s (the margin is for a busy machine)


def test_a_request_past_its_deadline_before_its_work_is_answered_at_once_and_its_work_never_runs(runner):
    ran = threading.Event()
    started = time.monotonic()
    with request_arrived(started - 2.5), pytest.raises(NothingRecorded):
        runner.run(ran.set)
    assert time.monotonic() - started < 1.0
    time.sleep(0.05)
    assert not ran.is_set()


def test_a_shorter_deadline_of_its_own_still_applies(runner):
    release = threading.Event()
    started = time.monotonic()
    with request_arrived(), pytest.raises(NothingRecorded):
        runner.run(release.wait, deadline=0.2)
    release.set()
    assert time.monotonic() - started < 1.9


def test_outside_a_request_the_whole_deadline_counts_from_the_call(runner):
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(NothingRecorded):
        runner.run(release.wait)
    release.set()
    assert time.monotonic() - started >= 1.95


def test_arrival_is_forgotten_after_the_request(runner):
    with request_arrived(time.monotonic() - 5):
        pass
    assert runner.run(lambda: "done") == "done"
