"""The app factory: builds the Bolt app, services, outbox delivery and scheduler from settings and injected parts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy.engine import Engine

import handlers
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.calendar import BusinessCalendar
from bot.domain.errors import DomainError
from bot.services.bindings import ButtonBindings
from bot.services.channels import ChannelService
from bot.services.deadline import REQUEST_DEADLINE_SECONDS, RequestRunner, request_arrived
from bot.services.exports import SlackNames, build_export
from bot.services.outbox import OutboxDispatcher
from bot.services.reminders import ReminderSweeper
from bot.services.replays import ReplayGuard
from bot.services.reviews import ReviewService
from bot.services.seal import SealService, open_keys
from handlers.blocks import render_outbox
from handlers.context import HandlerContext
from handlers.replies import make_reply_renderer
from storage.db import SessionFactory, check_writable, make_engine, migrate, session_factory
from storage.replays import watching

log = logging.getLogger("contract_bot")
requests_log = logging.getLogger("contract_bot.requests")
HEALTH_DEADLINE_SECONDS = 1.5
# How often the digests of signed requests whose window has passed are forgotten (bot.services.replays).
REPLAY_PURGE_SECONDS = 60.0
# Slack refuses a request signed more than 5 minutes away from its own clock (F1.3); so does Bolt.
SIGNATURE_MAX_AGE_SECONDS = 300
StartResponse = Callable[..., Any]


def make_web_client(
    settings: Settings, *, retries: bool = True, timeout: int = 15, retry_rate_limited: bool = True
) -> WebClient:
    """A WebClient for Slack (or GovSlack, a proxy, a test double).

    The background client retries 429, 5xx and dropped connections in its own thread. The outbox's client does not
    retry 429 (``retry_rate_limited=False``): the outbox paces itself and stores Retry-After for every process.
    The requests' client (views.open on a single-use trigger that lives 3 s) never retries and gives up within
    the trigger's life.
    """
    kwargs: dict[str, Any] = (
        {"base_url": settings.slack_api_url.rstrip("/") + "/"} if settings.slack_api_url else {}
    )
    if retries:
        kwargs["retry_handlers"] = [
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),  # sleeps Retry-After (+ jitter) in our own threads
            ServerErrorRetryHandler(max_retry_count=2),
        ]
        if not retry_rate_limited:
            kwargs["retry_handlers"] = [
                h for h in kwargs["retry_handlers"] if not isinstance(h, RateLimitErrorRetryHandler)
            ]
    else:
        kwargs["retry_handlers"] = []
    return WebClient(token=settings.slack_bot_token, timeout=timeout, **kwargs)


class LoggedApp(App):
    """Bolt's App, with one INFO line per request: its kind, who, the outcome and how long it took.

    The kind names the subcommand, button, form or event, never what was typed (contract records are CUI).
    """

    replays: ReplayGuard | None = None  # set by create_app

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        # every request passes here, over HTTP and in Socket Mode: its deadline counts from now (bot.services.deadline)
        started = time.monotonic()
        with request_arrived(started):
            response = self._once(req)
        if response.status == 401:  # refused before anything was read: the WSGI entry logs why, as a warning
            return response
        requests_log.info(
            "%s by %s: %s, HTTP %s in %.0f ms",
            request_kind(req.body),
            req.context.user_id or "-",
            req.context.get("outcome") or ("not ours" if response.status == 404 else "acknowledged"),
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _once(self, req: BoltRequest) -> BoltResponse:
        """Dispatch a signed request at most once: its units of work record it and refuse a replay of it.

        NOTE: here, around the whole dispatch: a Bolt (Python) middleware's next() only marks the chain to go on, so
        a middleware cannot hold a context around the listener. An event is carried out once per event_id instead
        (handlers.events), which also covers Slack's own retries of it.
        """
        body = req.body if isinstance(req.body, dict) else {}
        if self.replays is None or body.get("type") == "event_callback":
            return super().dispatch(req)
        timestamp = req.headers.get("x-slack-request-timestamp") or ()
        signature = req.headers.get("x-slack-signature") or ()
        with self.replays.once(next(iter(timestamp), None), next(iter(signature), None)):
            return super().dispatch(req)


def request_kind(body: Any) -> str:
    """What a request is, for the log: `/contract show`, `button answer_yes`, `form …`, `event …`."""
    if not isinstance(body, dict):
        return "request"
    if "command" in body:
        words = str(body.get("text") or "").split()[:1]
        from handlers.commands import subcommand_of

        known = subcommand_of(" ".join(words)) if words else None
        return f"{str(body.get('command'))[:30]} {known.name.split()[0] if known else '(no subcommand)'}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        action_id = actions[0].get("action_id") if isinstance(actions[0], dict) else None
        return f"button {str(action_id)[:40]}"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        return f"form {str(view.get('callback_id') if isinstance(view, dict) else None)[:40]}"
    if kind in ("shortcut", "message_action"):
        return f"shortcut {str(body.get('callback_id'))[:40]}"
    if kind == "event_callback":
        event = body.get("event")
        return f"event {str(event.get('type') if isinstance(event, dict) else None)[:40]}"
    return str(kind)[:40]


@dataclass
class ContractBot:
    """A built bot: the Bolt app, its WSGI entry, services and background workers."""

    settings: Settings
    engine: Engine
    session_factory: SessionFactory
    clock: Clock
    calendar: BusinessCalendar
    client: WebClient
    bolt: App
    service: ReviewService
    dispatcher: OutboxDispatcher
    sweeper: ReminderSweeper
    requests: RequestRunner
    followups: ThreadPoolExecutor
    channels: ChannelService
    replays: ReplayGuard | None = None
    seal: SealService | None = None
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _scheduler: Any = None

    def __post_init__(self) -> None:
        self._slack_handler = SlackRequestHandler(self.bolt)

    def wsgi(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """WSGI entry: POST /slack/events to Bolt, GET /healthz says whether the database answers and takes a write."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy = self.healthy()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok" if healthy else b"database unavailable"]
        if path == "/slack/events":
            return self._slack_events(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def healthy(self) -> bool:
        """True when the database answers and can take a write, within 1.5 s."""
        try:
            self.requests.run(lambda: check_writable(self.engine), deadline=HEALTH_DEADLINE_SECONDS)
            return True
        except DomainError:
            return False
        except Exception:  # noqa: BLE001 - the health check reports, never raises
            log.warning("health check: the database cannot take a write", exc_info=True)
            return False

    def _slack_events(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if not self.settings.socket_mode and not _signature_headers_parse(timestamp, signature):
            # slack_sdk's verifier raises on a non-numeric timestamp or a non-ASCII signature (Bolt would answer 500)
            log.warning("refused a request: malformed signature headers")
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error":"invalid request"}']
        status: list[str] = []

        def start(code: str, headers: list, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            result = self._slack_handler(environ, start)
        except Exception:  # noqa: BLE001
            # Bolt reads IDs out of the body before any check or listener, and raises on shapes Slack never
            # sends (e.g. "channel": false): refuse those as malformed instead of a 500
            log.warning("refused a malformed request to /slack/events", exc_info=True)
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error":"malformed request"}']
        if status and status[0].startswith("401"):
            log.warning("refused a request: %s", _signature_refusal(timestamp, signature))
        return result

    def check_channels_soon(self) -> Future:
        """Check the review and manager channels in the background (start-up): start-up is not held by Slack."""

        def check() -> None:
            try:
                self.channels.check()
            except Exception:  # noqa: BLE001 - the periodic check tries again
                log.exception("channel check failed")

        return self.followups.submit(check)

    def wake_delivery(self) -> None:
        """Tell the delivery loop there is something to send."""
        self._wake.set()

    def start_background(self, *, scheduler: bool = True) -> None:
        """Start outbox delivery and (optionally) the APScheduler reminder jobs (idempotent)."""
        if not any(t.is_alive() for t in self._threads):
            t = threading.Thread(target=self._delivery_loop, name="outbox-delivery", daemon=True)
            t.start()
            self._threads.append(t)
        if scheduler:
            from bot.scheduler import start_scheduler

            self._scheduler = start_scheduler(self)

    def _delivery_loop(self) -> None:
        purged_at = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.dispatcher.deliver_due(stop=self._stop.is_set)
            except Exception:  # noqa: BLE001 - keep delivering; the rows stay in the outbox
                log.exception("outbox delivery pass failed")
            if self.replays is not None and time.monotonic() - purged_at >= REPLAY_PURGE_SECONDS:
                purged_at = time.monotonic()
                try:
                    self.replays.purge()
                except Exception:  # noqa: BLE001 - the next pass tries again; a kept digest only costs a row
                    log.warning("could not forget old signed requests", exc_info=True)

    def stop(self) -> None:
        """Stop background work (waits for the delivery thread) and release the pools."""
        self._stop.set()
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        for t in self._threads:
            t.join(timeout=10)
        self.followups.shutdown(wait=True)
        self.requests.shutdown()
        self.engine.dispose()


def _signature_headers_parse(timestamp: str | None, signature: str | None) -> bool:
    """False when the signing headers are present but could never verify (not a number, not ASCII)."""
    try:
        if timestamp is not None:
            int(timestamp)
    except ValueError:
        return False
    return signature is None or signature.isascii()


def _signature_refusal(timestamp: str | None, signature: str | None) -> str:
    """Why Bolt refused a request's signature, for the log (never the signature or the body)."""
    if not signature or not timestamp:
        return "unsigned (no X-Slack-Signature or timestamp)"
    age = time.time() - int(timestamp)
    if abs(age) > SIGNATURE_MAX_AGE_SECONDS:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        return f"stale timestamp ({when}; at most {SIGNATURE_MAX_AGE_SECONDS} s either way)"
    return "bad signature"


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    request_threads: int | None = None,
    listener_threads: int = 8,
    followup_threads: int = 4,
    slack_rate_scale: float = 1.0,
    request_deadline: float = REQUEST_DEADLINE_SECONDS,
) -> ContractBot:
    """Build everything from settings; tests inject their own engine and clock.

    ``slack_rate_scale`` multiplies the Slack rate limits the outbox paces itself to (tests run Slack's clock faster).
    ``request_deadline`` is how long a request waits for its work before answering "nothing was recorded".
    """
    engine = engine or make_engine(settings.database_url)
    migrate(engine)
    plain_factory = session_factory(engine)
    # a request's sessions record its signed request with its change and refuse a replay (storage/replays.py)
    factory = watching(plain_factory)
    replays = ReplayGuard(plain_factory)
    clock = clock or SystemClock()
    calendar = BusinessCalendar(settings.bot_timezone)
    client = make_web_client(settings)
    wake = threading.Event()
    # before anything is audited: every entry is sealed with AUDIT_KEY_FILE's key (bot.services.seal)
    seal = SealService(
        plain_factory,
        engine,
        open_keys(settings, create=True),
        clock,
        settings,
        client=client,
        admin_user_ids=settings.admin_user_ids,
        on_commit=wake.set,
    )
    seal.start()
    service = ReviewService(factory, clock, calendar, settings, on_commit=wake.set)
    service.record_bootstrap_admins()  # AC-5: a change of ADMIN_USER_IDS between starts is audited and told
    sweeper = ReminderSweeper(factory, clock, calendar, settings, on_commit=wake.set)
    dispatcher = OutboxDispatcher(
        factory,
        # its own client: it paces itself through the database and honours a 429 for every process, so the
        # client's RateLimitErrorRetryHandler (a sleep and a retry that no other process knows of) is left out
        make_web_client(settings, retry_rate_limited=False),
        clock,
        render_outbox,
        calendar,
        admin_user_ids=settings.admin_user_ids,
        recheck=sweeper.recheck,
        slack_rate_scale=slack_rate_scale,
    )
    bolt = LoggedApp(
        # The listeners' client opens forms on a trigger that lives 3 s: no retries, and it gives up in time.
        client=make_web_client(settings, retries=False, timeout=2),
        signing_secret=settings.slack_signing_secret or "socket-mode-has-no-signing-secret",
        # Bolt asks Slack who the bot is (auth.test) here, once, so that no request waits for it.
        token_verification_enabled=True,
        # Each listener commits its work and then answers: the HTTP 200 goes out after the commit, carrying the
        # answer (the request path in README "How it is built").
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=listener_threads, thread_name_prefix="bolt-lazy"),
    )
    if request_threads is None:
        # SQLite takes one writer at a time: requests take turns in arrival order in one worker, instead of
        # racing for the lock in SQLite's busy handler, whose growing sleeps let late arrivals overtake (a
        # burst of 16 clients saw waits of 1.5 s while each transaction took a few ms). On PostgreSQL two
        # run side by side, one computing while the other waits for the server; the work is Python under one
        # interpreter lock, so more only interleave and stretch every request (p99 at 16 clients: 32 workers
        # 425-658 ms; in runs alternating on one machine, 4 workers 194-222 ms (mean 211), 2 workers 147-229 ms
        # (mean 186), 1 worker 250 ms; bench/README.md).
        request_threads = 1 if engine.dialect.name == "sqlite" else 2
    requests = RequestRunner(threads=request_threads, deadline=request_deadline)
    followups = ThreadPoolExecutor(max_workers=followup_threads, thread_name_prefix="followup")
    channels = ChannelService(
        factory,
        client,
        clock,
        service.runtime_settings,
        admin_user_ids=settings.admin_user_ids,
        on_commit=wake.set,
    )
    service.filing_gate = channels.refuse_filing
    export_names = SlackNames(client)  # users.info, cached for the process
    ctx = HandlerContext(
        service=service,
        requests=requests,
        render=make_reply_renderer(calendar.zone),
        exporter=lambda fmt: build_export(
            factory, clock, calendar, fmt, names=export_names, banner=settings.cui_banner
        ),
        names=export_names,
        followups=followups,
        client=client,
        channels=channels,
        replays=replays,
        bindings=ButtonBindings(factory),
    )
    bolt.replays = replays
    handlers.register(bolt, ctx)
    return ContractBot(
        settings=settings,
        engine=engine,
        session_factory=factory,
        clock=clock,
        calendar=calendar,
        client=client,
        bolt=bolt,
        service=service,
        dispatcher=dispatcher,
        sweeper=sweeper,
        requests=requests,
        followups=followups,
        channels=channels,
        replays=replays,
        seal=seal,
        _wake=wake,
    )
