"""The picture of a contract's clocks (PNG): what `timeline CR-n` sends, and what drafts and the annual report embed.

The spans come from the pure ``bot.domain.clocks``; this module reads the record and draws them with matplotlib's
object API on the Agg canvas (no pyplot: no global state, safe in the request threads).
"""

from __future__ import annotations

import functools
import io
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.domain import clocks
from bot.domain.clocks import ClockFacts, Span
from storage import models
from storage import repositories as repo
from storage.db import SessionFactory, read_only
from storage.models import AuditEntry, Contract

__all__ = ["ClockPainter", "clock_facts", "clock_facts_of", "contract_clocks_png", "render_png"]

# The picture is 6.4 inches wide: at Slack's preview (~360 px) a 12-point label is about 9 px high, and printed
# at 200 dpi it is a sharp 1,280 px. Sizes are in points, so the same picture serves both.
WIDTH_IN = 5.0
LANE_IN = 0.66
HEAD_IN = 0.9
FOOT_IN = 0.5
PRINT_DPI = 200
FONT = 12.0
LABEL_FONT = 10.0
CHAR_IN = LABEL_FONT * 0.55 / 72  # the mean width of a character of the label font, in inches
AXES_LEFT, AXES_WIDTH = 0.25, 0.72

SHORT = {clocks.NOTICE: "Notice §2(g)", clocks.DECISION: "Decision"}

COLOURS = {
    clocks.CONTRACT: "#4c72b0",
    clocks.STOPWORK: "#c44e52",
    clocks.DECISION: "#8172b2",
    clocks.NOTICE: "#55a868",
    clocks.WAIVER: "#dd8452",
    clocks.EXCLUDED: "#937860",
}
LATE = "#b00020"


# ---- the record -> facts ------------------------------------------------------------------------------------


def _day(value: Any) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _stopworks_from_audit(
    entries: Iterable[AuditEntry], current: date | None
) -> tuple[tuple[date, date | None], ...]:
    """Every stop-work order: each `resume` names the order it lifted (its before) and the day (its after)."""
    periods: list[tuple[date, date | None]] = []
    for e in entries:
        if e.action != "resume" or e.outcome != "ok":
            continue
        before, after = json.loads(e.before or "{}"), json.loads(e.after or "{}")
        start, lifted = _day(before.get("stopwork_since")), _day(after.get("stopwork_lifted_on"))
        if start is not None and lifted is not None:
            periods.append((start, lifted))
    if current is not None:
        periods.append((current, None))
    return tuple(sorted(set(periods), key=lambda p: p[0]))


def _facts(c: Contract, stopwork_entries: Iterable[AuditEntry], excluded_sent: date | None) -> ClockFacts:
    assert c.id is not None  # a stored contract has its number
    periods = _stopworks_from_audit(stopwork_entries, c.stopwork_since)
    if not periods and c.stopwork_lifted_on is not None:
        # a stop-work lifted before its history was audited: its end is all the record holds
        periods = ((c.stopwork_lifted_on, c.stopwork_lifted_on),)
    return ClockFacts(
        ref=f"CR-{c.id}",
        awarded_on=c.awarded_on,
        term=c.term,
        term_ends_on=getattr(c, "term_ends", None),  # the period of performance's end, once the record has it
        purpose=c.purpose,
        stopworks=periods,
        stopwork_extended_until=getattr(c, "stopwork_extended_until", None),
        determination=c.determination,
        determined_on=c.determined_on,
        redetermination_on=c.redetermination_on,
        certified_on=c.certified_on,
        certified_by=c.certified_by,
        notice_on=c.notice_on,
        cleared_on=c.cleared_on,
        excluded_notice_on=excluded_sent,
        waiver_issued_on=c.waiver_issued_on,
        waiver_until=c.waiver_until,
        waiver_revoked_on=c.waiver_revoked_on,
        waiver_reported_on=c.waiver_reported_on,
        revocation_reported_on=c.revocation_reported_on,
        closed_on=c.closed_on,
    )


def _excluded_sent(s: Session, ids: Sequence[int]) -> dict[int, date]:
    """The day each contract's §4(b) notice was recorded as sent (the notice table, once it exists)."""
    notice = getattr(models, "Notice", None)
    if notice is None or not ids:
        return {}
    out: dict[int, date] = {}
    rows = s.execute(
        select(notice).where(
            col(notice.contract_id).in_(list(ids)), notice.kind == "excluded", notice.event == "sent"
        )
    ).scalars()
    for n in rows:
        day = n.on_date or n.at.date()
        if n.contract_id not in out or day < out[n.contract_id]:
            out[n.contract_id] = day
    return out


def clock_facts_of(s: Session, contracts: Sequence[Contract]) -> dict[int, ClockFacts]:
    """The clock facts of many contracts in three queries (the annual report draws hundreds)."""
    ids = [c.id for c in contracts if c.id is not None]
    by_contract: dict[int, list[AuditEntry]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        stmt = (
            select(AuditEntry)
            .where(col(AuditEntry.contract_id).in_(part), AuditEntry.action == "resume")
            .order_by(col(AuditEntry.seq))
        )
        for e in s.execute(stmt).scalars():
            assert e.contract_id is not None  # selected by contract
            by_contract[e.contract_id].append(e)
    sent = _excluded_sent(s, ids)
    return {c.id: _facts(c, by_contract[c.id], sent.get(c.id)) for c in contracts if c.id is not None}


def clock_facts(s: Session, contract: Contract) -> ClockFacts:
    """The clock facts of one contract."""
    assert contract.id is not None  # a stored contract has its number
    return clock_facts_of(s, [contract])[contract.id]


# ---- facts -> picture -----------------------------------------------------------------------------------------


@functools.cache
def _agg() -> None:
    """matplotlib is imported when the first picture is drawn, not when the bot starts: half a second of every
    process's start-up (the bot, each command-line tool) that most never need."""
    import matplotlib

    matplotlib.use("Agg")  # NOTE: before anything imports pyplot; this module itself never does


class ClockPainter:
    """Draws clock pictures on one reused Figure (a Figure costs more to build than to draw): one per thread."""

    def __init__(self, *, banner: str = "CUI", dpi: int = PRINT_DPI) -> None:
        _agg()
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.banner = banner
        self.dpi = dpi
        self.figure = Figure(figsize=(WIDTH_IN, 3.0), dpi=dpi)
        FigureCanvasAgg(self.figure)

    def png(self, facts: ClockFacts, today: date, *, subtitle: str = "") -> bytes:
        """The PNG of one contract's clocks as of ``today``."""
        spans = clocks.clock_spans(facts, today)
        lanes = [
            lane for lane in clocks.LANES if lane == clocks.CONTRACT or any(s.lane == lane for s in spans)
        ]
        fig = self.figure
        fig.clear()
        height = HEAD_IN + FOOT_IN + LANE_IN * len(lanes)
        fig.set_size_inches(WIDTH_IN, height)
        ax = fig.add_axes((AXES_LEFT, FOOT_IN / height, AXES_WIDTH, LANE_IN * len(lanes) / height))
        _draw(ax, spans, lanes, today, WIDTH_IN * AXES_WIDTH)
        title = f"{facts.ref} — the order's clocks" + (f": {subtitle}" if subtitle else "")
        fig.text(0.5, 1 - 0.16 / height, self.banner, ha="center", va="top", fontsize=FONT, weight="bold")
        fig.text(0.5, 1 - 0.48 / height, _fit(title, 52), ha="center", va="top", fontsize=FONT)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi, metadata={"Software": None})
        return buf.getvalue()


def _fit(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@functools.cache
def _epoch() -> date:
    """matplotlib's day 0 (1970-01-01 unless configured)."""
    from matplotlib import dates as mdates

    return date.fromisoformat(mdates.get_epoch()[:10])


def _num(day: date) -> float:
    """matplotlib's number for the start of ``day`` (what mdates.date2num gives, at a fraction of its cost)."""
    return float((day - _epoch()).days)


def _draw(ax: Any, spans: list[Span], lanes: list[str], today: date, width_in: float) -> None:
    from matplotlib import dates as mdates

    first, last = clocks.date_range(spans, today)
    row = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}  # the first lane on top
    x_min, x_max = _num(first), _num(last + timedelta(days=1))
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(-0.62, len(lanes) - 0.38)
    ax.set_yticks(list(row.values()), labels=[SHORT.get(lane, lane) for lane in row], fontsize=FONT)
    ax.tick_params(axis="y", length=0)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)  # 5 finds no interval for about two years
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(axis="x", labelsize=FONT - 1)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    span_days = max(1.0, x_max - x_min)
    labels = _Labels(x_min, x_max, per_char=span_days * CHAR_IN / width_in)
    for s in spans:
        y = row[s.lane]
        colour = LATE if s.late else COLOURS[s.lane]
        x0 = _num(s.start)
        if s.kind == clocks.EVENT:
            ax.plot([x0 + 0.5], [y], marker="D", markersize=6, color=colour, zorder=3, linestyle="none")
            labels.add(s.label, x0 + 0.5, y, colour if s.late else "#222222", priority=0)
            continue
        if s.end is None:  # a deadline on one day (a stop-work order's lapse): a tick across the lane
            ax.plot([x0 + 0.5] * 2, [y - 0.3, y + 0.3], color=colour, linewidth=2, zorder=3)
            labels.add(s.label, x0 + 0.5, y, colour, priority=2)
            continue
        width = max(_num(s.last) + 1 - x0, span_days / 150)
        ax.barh(
            y,
            width,
            left=x0,
            height=0.34 if s.kind == clocks.PERIOD else 0.2,
            color=colour,
            alpha=0.85 if s.kind == clocks.PERIOD else 0.45,
            hatch="//" if s.running else None,
            edgecolor=colour if s.kind == clocks.DEADLINE else "white",
            linewidth=0.8,
            zorder=2,
        )
        labels.add(
            s.label, x0, y, colour if s.late else "#222222", priority=1 if s.kind == clocks.PERIOD else 2
        )
    labels.draw(ax)
    x = _num(today) + 0.5
    ax.axvline(x, color="#d62728", linestyle="--", linewidth=1.2, zorder=4)
    ax.text(x, len(lanes) - 0.4, "today", color="#d62728", ha="center", va="bottom", fontsize=FONT - 2)


class _Labels:
    """Places each label above or below its lane where it overprints no other (text width estimated from its
    characters); a label that fits nowhere is left out rather than drawn over another."""

    def __init__(self, x_min: float, x_max: float, *, per_char: float) -> None:
        self.x_min, self.x_max, self.per_char = x_min, x_max, per_char
        self.taken: dict[tuple[int, bool], list[tuple[float, float]]] = {}
        self.wanted: list[tuple[int, int, str, float, int, str]] = []
        self.placed: list[tuple[str, float, int, bool, str, str]] = []

    def add(self, text: str, x: float, y: int, colour: str, *, priority: int) -> None:
        """A label to place: events (0) before periods (1) before deadline windows (2)."""
        self.wanted.append((priority, len(self.wanted), text, x, y, colour))

    def _place(self, text: str, x: float, y: int, colour: str) -> None:
        width = len(text) * self.per_char
        for above in (True, False):
            for left, align in ((x, "left"), (x - width, "right")):
                if left < self.x_min - width * 0.05 or left + width > self.x_max + width * 0.05:
                    continue
                slots = self.taken.setdefault((y, above), [])
                if all(left + width < a or b < left for a, b in slots):
                    slots.append((left, left + width))
                    self.placed.append((text, x, y, above, align, colour))
                    return

    def draw(self, ax: Any) -> None:
        """Place the labels, most important first, and draw them."""
        for _, _, text, x, y, colour in sorted(self.wanted):
            self._place(text, x, y, colour)
        for text, x, y, above, align, colour in self.placed:
            ax.text(
                x,
                y + (0.21 if above else -0.21),
                text,
                fontsize=LABEL_FONT,
                color=colour,
                ha=align,
                va="bottom" if above else "top",
                clip_on=False,
                zorder=5,
            )


_painters = threading.local()


def render_png(
    facts: ClockFacts, today: date, *, banner: str = "CUI", dpi: int = PRINT_DPI, subtitle: str = ""
) -> bytes:
    """The PNG of one contract's clocks, on this thread's reused painter."""
    painter = getattr(_painters, "painter", None)
    if painter is None or painter.banner != banner or painter.dpi != dpi:
        painter = ClockPainter(banner=banner, dpi=dpi)
        _painters.painter = painter
    return painter.png(facts, today, subtitle=subtitle)


def contract_clocks_png(
    session: Session,
    contract_id: int,
    *,
    today: date,
    zone: ZoneInfo | None = None,
    banner: str = "CUI",
    dpi: int = PRINT_DPI,
) -> bytes:
    """The PNG of the contract's clocks as of ``today`` (a local date in ``zone``); raises LookupError for a
    contract that does not exist. The caller has checked that the reader may see it (need-to-know)."""
    del zone  # every date on record is already a local calendar date; kept for the callers' one signature
    contract = repo.get_contract(session, contract_id)
    if contract is None:
        raise LookupError(f"CR-{contract_id} does not exist")
    subtitle = f"{contract.vendor}, {contract.agency}"
    return render_png(clock_facts(session, contract), today, banner=banner, dpi=dpi, subtitle=subtitle)


# ---- the annual report's strips -------------------------------------------------------------------------------


class StripPainter:
    """The clocks of many contracts on one shared axis (the reporting year), for the annual report: the same lanes
    and colours as the `timeline` picture, without its labels (the report states each date in words beside it).

    The axis, lane names and grid are drawn once; each contract only draws its bars and marks over a copy of that
    background (Agg blitting), so a report of 1,000 contracts costs a few milliseconds a picture."""

    LANE_IN = 0.26

    def __init__(self, first: date, last: date, as_of: date, *, dpi: int = 110, banner: str = "CUI") -> None:
        _agg()
        from matplotlib import dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure

        self.dpi = dpi
        height = 0.45 + self.LANE_IN * len(clocks.LANES)
        self.figure = Figure(figsize=(WIDTH_IN, height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        ax = self.figure.add_axes(
            (AXES_LEFT, 0.4 / height, AXES_WIDTH, self.LANE_IN * len(clocks.LANES) / height)
        )
        self.ax = ax
        self.rows = {lane: len(clocks.LANES) - 1 - i for i, lane in enumerate(clocks.LANES)}
        self.x_min, self.x_max = _num(first), _num(last + timedelta(days=1))
        ax.set_xlim(self.x_min, self.x_max)
        ax.set_ylim(-0.6, len(clocks.LANES) - 0.4)
        ax.set_yticks(
            list(self.rows.values()), labels=[SHORT.get(lane, lane) for lane in self.rows], fontsize=8
        )
        ax.tick_params(axis="y", length=0)
        locator = mdates.MonthLocator(bymonth=(1, 4, 7, 10))
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.tick_params(axis="x", labelsize=7.5)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.5)
        ax.set_axisbelow(True)
        x = _num(as_of) + 0.5
        ax.axvline(x, color="#d62728", linestyle="--", linewidth=1.0)
        self.figure.text(0.01, 0.98, banner, ha="left", va="top", fontsize=7, weight="bold")
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.bars = PolyCollection([], zorder=2, linewidths=0)
        self.bars.set_animated(True)
        ax.add_collection(self.bars)
        (self.marks,) = ax.plot([], [], marker="D", markersize=4.5, linestyle="none", zorder=3, animated=True)
        self.marks.set_markeredgewidth(0)

    def png(self, facts: ClockFacts, today: date) -> bytes:
        """The strip of one contract's clocks."""
        from PIL import Image

        polys, colours, xs, ys, mark_colours = [], [], [], [], []
        for s in clocks.clock_spans(facts, today):
            y = self.rows[s.lane]
            colour = LATE if s.late else COLOURS[s.lane]
            x0 = max(_num(s.start), self.x_min)
            if s.kind == clocks.EVENT or s.end is None:
                x = _num(s.start) + 0.5
                if self.x_min <= x <= self.x_max:
                    xs.append(x)
                    ys.append(y)
                    mark_colours.append(colour)
                continue
            x1 = min(_num(s.last) + 1, self.x_max)
            if x1 <= x0:
                continue
            h = 0.34 if s.kind == clocks.PERIOD else 0.18
            polys.append([(x0, y - h), (x0, y + h), (x1, y + h), (x1, y - h)])
            colours.append(colour)
        self.canvas.restore_region(self.background)
        self.bars.set_verts(polys)
        self.bars.set_facecolor(colours or ["none"])
        self.ax.draw_artist(self.bars)
        if xs:
            # one colour per mark: a scatter would do it, but a Line2D per colour is cheaper to draw
            for colour in dict.fromkeys(mark_colours):
                self.marks.set_data(
                    [x for x, c in zip(xs, mark_colours, strict=True) if c == colour],
                    [y for y, c in zip(ys, mark_colours, strict=True) if c == colour],
                )
                self.marks.set_color(colour)
                self.ax.draw_artist(self.marks)
        width, height = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        # a few dozen colours: a palette PNG is a third of the size and half the time of an RGB one
        image.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(
            buf, format="PNG", compress_level=1
        )
        return buf.getvalue()


# ---- `timeline CR-n` ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineRequest:
    """`timeline CR-n` was allowed (need-to-know): the handler draws the picture after the answer and sends it."""

    contract_id: int
    ref: str

    @property
    def text(self) -> str:
        """The private reply."""
        return (
            f":calendar: The picture of {self.ref}'s clocks is on its way to your direct messages (a PNG: award, "
            "stop-work orders, determination, certification, notice and waiting period, waiver, today)."
        )

    def __str__(self) -> str:
        return self.text


def timeline_png(
    session_factory: SessionFactory, contract_id: int, *, today: date, zone: ZoneInfo, banner: str
) -> bytes:
    """The picture `timeline` sends, from a read-only snapshot."""
    with read_only(session_factory) as s:
        return contract_clocks_png(s, contract_id, today=today, zone=zone, banner=banner)
