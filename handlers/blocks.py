"""Block Kit builders (``build_*``) and the outbox renderer. All user text is escaped; mentions come from IDs."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.text import escape_mrkdwn
from bot.services.views import ContractView
from handlers.ids import ActionId

SECTION_LIMIT = 2900  # Slack's text object allows 3000 characters


def esc(value: object) -> str:
    """User text made inert for mrkdwn."""
    return escape_mrkdwn("" if value is None else str(value))


def clip(text: str, limit: int = SECTION_LIMIT) -> str:
    """Cut text to fit a Block Kit text object."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md(text: str) -> MarkdownTextObject:
    """A mrkdwn text object with Slack's automatic parsing off (no surprise @here or links)."""
    return MarkdownTextObject(text=clip(text), verbatim=True)


def section(text: str) -> SectionBlock:
    """A section block of (already escaped) mrkdwn."""
    return SectionBlock(text=md(text))


def money(cents: int | None) -> str:
    """$2,000,000 style."""
    if cents is None:
        return "—"
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}" + (f".{rest:02d}" if rest else "")


def day(d: date | None) -> str:
    """ISO date or a dash."""
    return d.isoformat() if d else "—"


def when(instant: datetime | None, zone: ZoneInfo | None = None) -> str:
    """A Slack date token that shows in the reader's own zone, with a plain fallback."""
    if instant is None:
        return "—"
    fallback = instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if zone else instant.isoformat()
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


STATUS_EMOJI = {
    "intake": ":inbox_tray:",
    "in-review": ":mag:",
    "stop-work": ":octagonal_sign:",
    "determined": ":scales:",
    "prohibited": ":no_entry:",
    "certified": ":white_check_mark:",
    "waiting": ":hourglass_flowing_sand:",
    "cleared": ":large_green_circle:",
    "waiver": ":page_facing_up:",
    "out-of-scope": ":heavy_minus_sign:",
    "closed": ":lock:",
}


def status_label(status: str) -> str:
    """Emoji and status word."""
    return f"{STATUS_EMOJI.get(status, '')} *{status}*".strip()


def progress_line(v: ContractView) -> str:
    """ "answered n of N, k red flags"."""
    flags = len(v.red_flags)
    flag_text = (
        f", :triangular_flag_on_post: {flags} red flag{'s' if flags != 1 else ''} ({', '.join(v.red_flags)})"
        if flags
        else ", 0 red flags"
    )
    return f"answered {v.answered} of {v.total}{flag_text}"


# ---- the parent message and the questions in its thread --------------------------------------------------


def build_parent_message(v: ContractView) -> dict:
    """The parent message in REVIEW_CHANNEL: reference, parties, value, award, status, progress."""
    title = f"{v.ref}: {esc(v.vendor)} / {esc(v.product)}"
    lines = [
        f"*{title}*",
        f"*Agency:* {esc(v.agency)}" + (f" ({esc(v.component)})" if v.component else ""),
        f"*Value:* {money(v.value_cents)}   *Awarded:* {day(v.awarded_on)}   *Purpose:* {esc(v.purpose or '—')}",
        f"*Status:* {status_label(v.status)}   *Progress:* {progress_line(v)}",
    ]
    if v.state.stopwork_since:
        lines.append(f":octagonal_sign: Stop-work in effect since {day(v.state.stopwork_since)}")
    use = (
        "permitted" + (" (waiver)" if v.verdict.via_waiver else "")
        if v.verdict.permitted
        else "not permitted"
    )
    lines.append(f"*Operational use:* {use}")
    blocks = [
        section("\n".join(lines)),
        ContextBlock(
            elements=[md(f"Filed by <@{v.filed_by}> · `/contract show {v.ref}` for the full record")]
        ),
    ]
    text = f"{v.ref}: {esc(v.vendor)} / {esc(v.product)} — {v.status}, {progress_line(v)}"
    return {"text": clip(text, 3000), "blocks": [b.to_dict() for b in blocks]}


def build_question_message(v: ContractView, qid: str) -> dict:
    """One question in the thread: its ID and wording, Yes / No / Unknown buttons, a way to add a note."""
    q = v.question(qid)
    assert q is not None, f"unknown question {qid}"  # queued by the service for a question it asked
    header = f"*{q.qid}* ({q.citation}) {esc(q.text)}"
    blocks: list = [section(header)]
    value = f"{v.id}:{q.qid}"
    frozen = v.state.determination is not None or v.state.closed_on is not None
    if q.answer:
        flag = " :triangular_flag_on_post: red flag" if q.red_flag else ""
        answered = f"*Answer: {q.answer.capitalize()}*{flag} — <@{q.answered_by}>, {when(q.answered_at)}"
        blocks.append(ContextBlock(elements=[md(answered)]))
    if q.note:
        blocks.append(ContextBlock(elements=[md(f"Note: {esc(q.note)}")]))
    if not frozen:
        blocks.append(
            ActionsBlock(
                block_id=f"q:{q.qid}",
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Yes"),
                        action_id=ActionId.ANSWER_YES.value,
                        value=value,
                        style="primary" if q.answer == "yes" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="No"),
                        action_id=ActionId.ANSWER_NO.value,
                        value=value,
                        style="primary" if q.answer == "no" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Unknown"),
                        action_id=ActionId.ANSWER_UNKNOWN.value,
                        value=value,
                        style="primary" if q.answer == "unknown" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Add note"), action_id=ActionId.ADD_NOTE.value, value=value
                    ),
                ],
            )
        )
    else:
        blocks.append(ContextBlock(elements=[md("Answers are frozen: a determination has been recorded.")]))
    state = f" — answered {q.answer.capitalize()}" if q.answer else ""
    return {
        "text": clip(f"{v.ref} {q.qid}: {esc(q.text)}{state}", 3000),
        "blocks": [b.to_dict() for b in blocks],
    }


def build_text_message(text: str) -> dict:
    """A plain thread or channel line (already escaped by its author)."""
    return {"text": clip(text, 3000), "blocks": [section(text).to_dict()]}


def render_outbox(payload: dict, view: ContractView | None) -> dict:
    """The outbox renderer: turns a queued payload into a Slack message from the current state."""
    kind = payload.get("render")
    if kind == "parent" and view is not None:
        return build_parent_message(view)
    if kind == "question" and view is not None:
        return build_question_message(view, payload["qid"])
    if kind == "reminder":
        return build_reminder_message(payload)
    return build_text_message(payload.get("text", ""))


def build_reminder_message(payload: dict) -> dict:
    """A reminder: starts with "Reminder:", names the contract, what is due, since when, what to do; snooze buttons."""
    text = payload.get("text", "")
    blocks: list[Block] = [section(text)]
    keys = payload.get("snooze_keys")
    if keys:
        value = ",".join(str(k) for k in keys)[:1900]
        blocks.append(
            ActionsBlock(
                block_id="snooze",
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Remind me tomorrow"),
                        action_id=ActionId.SNOOZE_TOMORROW.value,
                        value=value,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Remind me in 3 days"),
                        action_id=ActionId.SNOOZE_3D.value,
                        value=value,
                    ),
                ],
            )
        )
    return {"text": clip(text, 3000), "blocks": [b.to_dict() for b in blocks]}


# ---- replies to the person who asked ------------------------------------------------------------------


def build_show(v: ContractView, zone: ZoneInfo | None = None) -> dict:
    """`show CR-n`: may this tool be used operationally, and if not, exactly what is still missing."""
    s = v.state
    lines = [
        f"*{v.ref}: {esc(v.vendor)} / {esc(v.product)}*  {status_label(v.status)}",
        f"*Agency:* {esc(v.agency)}"
        + (f" ({esc(v.component)})" if v.component else "")
        + f"   *Value:* {money(v.value_cents)}   *Awarded:* {day(v.awarded_on)}   *Purpose:* {esc(v.purpose or '—')}",
    ]
    extra = []
    if v.term:
        extra.append(f"*Term:* {esc(v.term)}")
    if v.contract_no:
        extra.append(f"*Contract no.:* {esc(v.contract_no)}")
    if v.parent:
        extra.append(f"*Ultimate owner:* {esc(v.parent)}")
    if v.third_party is not None:
        extra.append(f"*Third party operates it:* {'yes' if v.third_party else 'no'}")
    if extra:
        lines.append("   ".join(extra))
    if v.verdict.permitted:
        use = ":large_green_circle: *Operational use is permitted*" + (
            f" under a waiver in force through {day(s.waiver_until)}" if v.verdict.via_waiver else ""
        )
    else:
        use = ":red_circle: *Operational use is not permitted.* Still missing:\n" + "\n".join(
            f"• {m}" for m in v.verdict.missing
        )
    blocks: list = [section("\n".join(lines)), section(use)]
    facts = [
        f"*Answers:* {progress_line(v)}"
        + (" — the order does not apply (SCOPE-1 = No)" if v.out_of_scope else "")
    ]
    facts.append(
        f"*Stop-work:* in effect since {day(s.stopwork_since)} ({(v.today - s.stopwork_since).days} days): "
        f"{esc(v.stopwork_reason)}"
        if s.stopwork_since
        else "*Stop-work:* none in effect"
    )
    if s.determination:
        facts.append(
            f"*Determination:* {s.determination} on {day(s.determined_on)} by <@{v.determined_by}>: "
            f"{esc(v.determination_reason)}"
        )
    else:
        facts.append("*Determination:* none yet")
    facts.append(
        f"*Certification (§2(f)):* {esc(s.certified_by)} on {day(s.certified_on)}"
        if s.certified_on
        else "*Certification (§2(f)):* none"
    )
    if s.notice_on:
        cleared = f", cleared by the APNSA on {day(s.cleared_on)}" if s.cleared_on else ""
        facts.append(
            f"*APNSA notice (§2(g)):* {day(s.notice_on)}; waiting period ends {day(v.waiting_end)}{cleared}"
        )
    else:
        facts.append("*APNSA notice (§2(g)):* not sent")
    if v.verdict.earliest_on and not v.verdict.permitted:
        facts.append(f"*Earliest permitted operational use:* {day(v.verdict.earliest_on)}")
    if s.waiver_issued_on:
        if s.waiver_revoked_on:
            life = f"in force through {day(s.waiver_until)}, revoked {day(s.waiver_revoked_on)}"
        elif s.waiver_until and v.today > s.waiver_until:
            life = f"expired after {day(s.waiver_until)}"
        else:
            life = f"in force through {day(s.waiver_until)} (expires after that day)"
        facts.append(
            f"*Waiver (§2(m)):* by the {esc(v.waiver_official)}, issued {day(s.waiver_issued_on)}, {life}"
        )
    if v.waiver_report_due:
        facts.append(f"*72-hour report due:* {when(v.waiver_report_due, zone)}")
    if s.closed_on:
        facts.append(f"*Closed:* {day(s.closed_on)}: {esc(v.close_reason)}")
    if v.reviewers:
        facts.append("*Reviewers:* " + ", ".join(f"<@{u}>" for u in v.reviewers))
    if v.next_reminders:
        facts.append("*Next reminders:* " + "; ".join(f"{k} {when(t, zone)}" for k, t in v.next_reminders))
    blocks.append(section("\n".join(facts)))
    answered = [q for q in v.questions if q.answer]
    if answered:
        rows = [f"`{q.qid}` {q.answer}{' :triangular_flag_on_post:' if q.red_flag else ''}" for q in answered]
        blocks.append(section("*Answers:* " + "  ".join(rows)))
    if v.channel_id and v.parent_ts:
        blocks.append(
            ContextBlock(
                elements=[
                    md(f"Thread: https://slack.com/archives/{v.channel_id}/p{v.parent_ts.replace('.', '')}")
                ]
            )
        )
    text = f"{v.ref} {v.status}: operational use {'permitted' if v.verdict.permitted else 'not permitted'}"
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}


def build_list(rows, status: str | None, total: int) -> dict:  # noqa: ANN001
    """`list [status]`: contracts newest first."""
    if not rows:
        return {"text": f"No contracts{' with status ' + status if status else ''} yet."}
    lines = [
        f"*{v.ref}* {esc(v.vendor)} / {esc(v.product)} — {esc(v.agency)} · {status_label(v.status)} · "
        f"{v.answered}/{v.total} answered" + (f" · {len(v.red_flags)} red flags" if v.red_flags else "")
        for v in rows
    ]
    head = f"{total} contract{'s' if total != 1 else ''}" + (f" with status {status}" if status else "")
    if total > len(rows):
        head += f" (newest {len(rows)} shown)"
    blocks = [section(f"*{head}*")] + [section(chunk) for chunk in _chunks(lines)]
    return {"text": head, "blocks": [b.to_dict() for b in blocks[:50]]}


def _chunks(lines: list[str], limit: int = SECTION_LIMIT) -> list[str]:
    out, cur = [], ""
    for line in lines:
        if cur and len(cur) + len(line) + 1 > limit:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n{line}" if cur else line
    if cur:
        out.append(cur)
    return out


def build_timeline(ref: str, entries, zone: ZoneInfo | None = None) -> dict:  # noqa: ANN001
    """`audit CR-n`: every event with actor, time and what changed, refusals included."""
    if not entries:
        return {"text": f"No audit entries for {ref}."}
    lines = []
    for e in entries:
        mark = ":no_entry_sign: refused " if e.outcome == "refused" else ""
        detail = f" — {esc(e.detail)}" if e.detail else ""
        change = _diff(e.before, e.after)
        lines.append(f"`#{e.seq}` {when(e.at, zone)} <@{e.actor}> {mark}*{esc(e.action)}*{detail}{change}")
    blocks = [section(f"*Audit timeline of {ref}* ({len(entries)} entries)")] + [
        section(c) for c in _chunks(lines)
    ]
    return {"text": f"Audit timeline of {ref}", "blocks": [b.to_dict() for b in blocks[:50]]}


def _diff(before: str | None, after: str | None) -> str:
    import json

    b = json.loads(before) if before else {}
    a = json.loads(after) if after else {}
    if not b and a:
        keys = [k for k, v in a.items() if v not in (None, "", [])]
        return " (" + ", ".join(f"{k}={esc(a[k])}" for k in keys[:8]) + ")" if keys else ""
    changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if not changed:
        return ""
    return " (" + "; ".join(f"{k}: {esc(b.get(k))} → {esc(a.get(k))}" for k in changed[:8]) + ")"
