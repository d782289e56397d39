"""bot.services.views: pages of long answers, and thread links that come from Slack, never a guessed host."""

from __future__ import annotations

import pytest

from bot.domain.errors import InputError
from bot.services.views import Page, link, page_of, thread_link

GOV = "https://agency.slack-gov.com/archives/CREVIEW1/p1732460400000100"


@pytest.mark.parametrize(
    ("total", "number", "size", "offset", "count", "pages", "last"),
    [
        (402, 1, 40, 0, 40, 11, False),
        (402, 10, 40, 360, 40, 11, False),
        (402, 11, 40, 400, 2, 11, True),
        (40, 1, 40, 0, 40, 1, True),
        (41, 2, 40, 40, 1, 2, True),
        (0, 1, 40, 0, 0, 1, True),
    ],
)
def test_page_arithmetic(total, number, size, offset, count, pages, last):
    page = page_of(total, number, size, "entries")
    assert (page.offset, page.count, page.pages, page.is_last) == (offset, count, pages, last)


@pytest.mark.parametrize(
    ("total", "number", "says"),
    [
        (402, 12, "Page 12 does not exist: there are 11 pages (402 audit entries, 40 a page)."),
        (3, 2, "Page 2 does not exist: there is only one page (3 audit entries)."),
        (0, 2, "Page 2 does not exist: there are no audit entries."),
        (10, 0, "Pages are numbered from 1"),
        (10, -3, "Pages are numbered from 1"),
        (10, 10**12, "Page 1000000000000 does not exist"),
    ],
)
def test_a_page_that_does_not_exist_is_refused_with_the_pages_there_are(total, number, says):
    with pytest.raises(InputError) as caught:
        page_of(total, number, 40, "audit entries")
    assert says in caught.value.message


def test_page_of_an_empty_answer_is_page_one_of_one():
    assert page_of(0, 1, 20, "contracts") == Page(1, 20, 0)


def test_thread_link_is_slacks_own_link_as_url_and_label():
    assert thread_link(GOV, "CREVIEW1") == f"<{GOV}|open the thread>"
    with_query = "https://agency.slack-gov.com/archives/C1/p1?thread_ts=1.2&cid=C1"
    assert link(with_query, "x") == "<https://agency.slack-gov.com/archives/C1/p1?thread_ts=1.2&amp;cid=C1|x>"


def test_without_a_permalink_the_thread_is_named_by_its_channel_and_no_host_is_guessed():
    assert thread_link(None, "CREVIEW1") == "in <#CREVIEW1> (its link is not known yet)"
    assert thread_link(None, "CREVIEW1", posted=False) == "in <#CREVIEW1> once its first message is posted"
    assert thread_link(None, None) == ""
    assert "slack.com" not in thread_link(None, "CREVIEW1")


@pytest.mark.parametrize(
    "bad",
    [
        "http://agency.slack-gov.com/archives/C1/p1",  # not https
        "https://host/x|<!channel>",  # would end the link and ping
        "https://host/x> <!here",
        "https://host/a b",
        "javascript:alert(1)",
        "https://" + "a" * 600,
        "",
    ],
)
def test_a_permalink_that_is_not_a_plain_https_url_is_not_linked(bad):
    assert link(bad, "thread") is None
    assert thread_link(bad, "CREVIEW1") == "in <#CREVIEW1> (its link is not known yet)"


@pytest.mark.parametrize("channel", ["<!channel>", "C1|x", "general", "c123"])
def test_a_channel_id_that_is_not_one_is_not_rendered(channel):
    assert thread_link(None, channel) == ""


def test_a_contracts_messages_render_the_same_without_what_only_show_shows(running):
    """The outbox builds a contract's view without its next reminders, its vendor's screening lines and its
    reviewers (six queries a message): the parent and question messages must not show any of them."""
    from bot.services.views import build_contract_view
    from handlers.blocks import render_outbox
    from storage import repositories as repo
    from storage.db import read_only
    from tests.conftest import ADMIN, MANAGER, MEMBER, REVIEWER
    from tests.support.lists import load_fixture_list

    load_fixture_list(running)
    service = running.bot.service
    service.grant(ADMIN, REVIEWER, "reviewer")
    service.grant(ADMIN, MANAGER, "manager")
    service.file_contract(
        MEMBER,
        {"vendor": "Nimbus Intercept S.A.", "product": "Implant", "agency": "ICE", "purpose": "operational"},
    )
    service.assign(MANAGER, 1, [REVIEWER])
    with read_only(running.bot.session_factory) as s:
        contract = repo.get_contract(s, 1)
        assert contract is not None
        today = service.today()
        full = build_contract_view(s, contract, today)
        light = build_contract_view(
            s, contract, today, with_reminders=False, with_vendor=False, with_reviewers=False
        )
    # what is left out is there to leave out (so the comparison below can fail)
    assert full.screening and full.reviewers == (REVIEWER,) and full.next_reminders
    assert not (light.screening or light.reviewers or light.next_reminders)
    payloads = [{"render": "parent"}] + [
        {"render": "question", "qid": q.qid} for q in full.questions if q.asked
    ]
    assert len(payloads) > 1
    for payload in payloads:
        assert render_outbox(payload, light) == render_outbox(payload, full), payload
