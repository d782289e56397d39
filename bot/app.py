"""The app factory: builds the Bolt app, services, outbox delivery and scheduler from settings and injected parts."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import Engine

import handlers
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.calendar import BusinessCalendar
from bot.services.exports import build_export
from bot.services.inbox import AckGate, Inbox
from bot.services.outbox import OutboxDispatcher
from bot.services.reminders import ReminderSweeper
from bot.services.reviews import ReviewService
from handlers.blocks import render_outbox
from handlers.context import HandlerContext, payload_problem
from handlers.replies import make_reply_renderer
from storage.db import SessionFactory, inbox_engine, journal_dir, make_engine, migrate, ping, session_factory

log = logging.getLogger("contract_bot")


def make_web_client(settings: Settings) -> WebClient:
    """A WebClient for Slack (or GovSlack, a proxy, a test double) with retries for 429, 5xx and dropped connections."""
    kwargs = {"base_url": settings.slack_api_url.rstrip("/") + "/"} if settings.slack_api_url else {}
    return WebClient(
        token=settings.slack_bot_token,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),  # sleeps Retry-After (+ jitter) in our own threads
            ServerErrorRetryHandler(max_retry_count=2),
        ],
        **kwargs,
    )


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
    work_pool: ThreadPoolExecutor
    inbox: Inbox
    identity: BotIdentity | None = None
    inbox_engine: Engine | None = (
        None  # where acknowledged requests are recorded (a file of its own on SQLite)
    )
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _scheduler: object | None = None

    def __post_init__(self) -> None:
        self._slack_handler = _GuardedRequestHandler(self.bolt, self.settings)

    def wsgi(self, environ: dict, start_response: Callable) -> list[bytes]:
        """WSGI entry: POST /slack/events to Bolt, GET /healthz reports whether the database answers."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy = ping(self.engine)
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok" if healthy else b"database unavailable"]
        if path == "/slack/events":
            with self.inbox.gate.request():  # background work waits while a request is being acknowledged
                return self._slack_events(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def _slack_events(self, environ: dict, start_response: Callable) -> list[bytes]:
        if not self.settings.socket_mode and not _signature_headers_parse(environ):
            # slack_sdk's verifier raises (Bolt answers 500) on a non-numeric timestamp or a non-ASCII signature
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error":"invalid request"}']
        try:
            return self._slack_handler(environ, start_response)
        except Exception:  # noqa: BLE001
            # Bolt reads IDs out of the body before any check or listener, and raises on shapes Slack never
            # sends (e.g. "channel": false): refuse those as malformed instead of a 500
            log.warning("refused a malformed request to /slack/events", exc_info=True)
            start_response("400 Bad Request", [("Content-Type", "application/json")], sys.exc_info())
            return [b'{"error":"malformed request"}']

    def wake_delivery(self) -> None:
        """Tell the delivery loop there is something to send."""
        self._wake.set()

    def start_background(self, *, scheduler: bool = True) -> None:
        """Start the inbox worker, outbox delivery and (optionally) the APScheduler reminder jobs (idempotent)."""
        # NOTE: CPython hands the GIL to a waiting thread only after the holder has run for the switch interval
        # (5 ms by default). Background work is CPU-bound Python; an acknowledgement waits behind it once per
        # GIL hand-off, several times per request. 1 ms keeps acknowledgements quick while work runs.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        # NOTE: what start-up built (Bolt, SQLAlchemy's mappers and compiled statements) lives as long as the
        # process; frozen, the collector stops walking it, and its full collections stop pausing every thread.
        gc.collect()
        gc.freeze()
        self.inbox.start()
        if not any(t.is_alive() for t in self._threads):
            t = threading.Thread(target=self._delivery_loop, name="outbox-delivery", daemon=True)
            t.start()
            self._threads.append(t)
        if scheduler:
            from bot.scheduler import start_scheduler

            self._scheduler = start_scheduler(self)

    def _delivery_loop(self) -> None:
        if self.identity is not None:
            try:  # learn who we are before the first request needs it (serve has usually primed it already)
                self.identity.get()
            except Exception:  # noqa: BLE001 - the first request will ask again
                log.warning("auth.test failed; it will be retried on the first request", exc_info=True)
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.dispatcher.deliver_due(stop=self._stop.is_set, pace=self._give_way)
            except Exception:  # noqa: BLE001 - keep delivering; the rows stay in the outbox
                log.exception("outbox delivery pass failed")

    def _give_way(self) -> None:
        # Let requests being acknowledged go first; bounded, so delivery keeps moving under a burst that never stops.
        self.inbox.gate.wait_quiet(self.inbox.yield_max)

    def stop(self) -> None:
        """Stop background work (waits for the delivery thread) and release the pool."""
        self.inbox.stop()
        self._stop.set()
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        for t in self._threads:
            t.join(timeout=10)
        self.work_pool.shutdown(wait=True)
        self.engine.dispose()
        if self.inbox_engine is not None and self.inbox_engine is not self.engine:
            self.inbox_engine.dispose()


class _GuardedRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler, but a signed body of a shape Slack never sends is acknowledged and dropped: Bolt's own
    middleware and matchers index into it (``body["event"].get``, ``action["action_id"]``) and would answer 500."""

    def __init__(self, app: App, settings: Settings) -> None:
        super().__init__(app)
        self._verifier = (
            None if settings.socket_mode else SignatureVerifier(settings.slack_signing_secret or "")
        )

    def dispatch(self, request):  # noqa: ANN001, ANN201 - slack_bolt.adapter.wsgi types
        received_at = time.monotonic()  # the ack budget counts from here, not from when a listener got to it
        bolt_request = BoltRequest(
            body=request.get_body(), query=request.query_string, headers=request.get_headers()
        )
        headers = bolt_request.headers  # lower-case names, lists of values
        if self._verifier is not None:
            # NOTE: verified here, once; Bolt's own check is off (create_app) because it would repeat this one.
            # slack_sdk's verifier also refuses a timestamp more than 5 minutes off, as Bolt does.
            if not self._verifier.is_valid(
                bolt_request.raw_body,
                (headers.get("x-slack-request-timestamp") or ["0"])[0],
                (headers.get("x-slack-signature") or [""])[0],
            ):
                return BoltResponse(status=401, body={"error": "invalid request"})
            problem = payload_problem(bolt_request.body, bolt_request.raw_body)
            if problem is not None:
                log.warning("ignored a malformed request: %s", problem)
                return BoltResponse(status=200, body="")
        bolt_request.context["received_at"] = received_at
        return self.app.dispatch(bolt_request)


def _signature_headers_parse(environ: dict) -> bool:
    """False when the signing headers are present but could never verify (not a number, not ASCII)."""
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE")
    try:
        if timestamp is not None:
            int(timestamp)
    except ValueError:
        return False
    return signature is None or signature.isascii()


class BotIdentity:
    """Who the bot is in Slack (auth.test), asked once and shared by every request."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._result: dict | None = None
        self._lock = threading.Lock()

    def prime(self, auth_test: dict) -> None:
        """Use an auth.test answer already obtained (serve checks the token at start-up)."""
        with self._lock:
            self._result = dict(auth_test)

    def get(self) -> dict:
        """The auth.test answer, asking Slack only the first time."""
        with self._lock:
            if self._result is None:
                self._result = dict(self.client.auth_test().data)
            return self._result

    def authorizer(self) -> Callable[..., AuthorizeResult]:
        """Bolt's authorize hook: the bot's token and identity for every request.

        A plain function, because Bolt passes its arguments by name and a bound method's signature has ``self``.
        """

        results: dict[tuple, AuthorizeResult] = {}

        def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            result = results.get((enterprise_id, team_id))
            if result is None:  # one per workspace: built once, not on every request
                me = self.get()
                result = results[(enterprise_id, team_id)] = AuthorizeResult(
                    enterprise_id=enterprise_id,
                    team_id=me.get("team_id") or team_id,
                    bot_user_id=me.get("user_id"),
                    bot_id=me.get("bot_id"),
                    bot_token=self.client.token,
                )
            return result

        return authorize


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    client: WebClient | None = None,
    listener_threads: int = 64,
    work_threads: int = 16,
    ack_budget: float | None = None,
) -> ContractBot:
    """Build everything from settings; tests inject their own engine, clock and Slack client."""
    engine = engine or make_engine(settings.database_url)
    migrate(engine)
    factory = session_factory(engine)
    clock = clock or SystemClock()
    calendar = BusinessCalendar(settings.bot_timezone)
    client = client or make_web_client(settings)
    wake = threading.Event()
    service = ReviewService(factory, clock, calendar, settings, on_commit=wake.set)
    sweeper = ReminderSweeper(factory, clock, calendar, settings, on_commit=wake.set)
    dispatcher = OutboxDispatcher(
        factory,
        client,
        clock,
        render_outbox,
        calendar,
        admin_user_ids=settings.admin_user_ids,
        recheck=sweeper.recheck,
    )
    identity = BotIdentity(client)
    bolt = App(
        # NOTE: Bolt's single-team authorization calls auth.test on the first requests without a lock, so a
        # burst at start-up paid Slack's latency inside the 3 s ack window once per request. BotIdentity
        # calls it once (serve primes it at start-up) and answers every request from memory.
        authorize=identity.authorizer(),
        signing_secret=settings.slack_signing_secret or "socket-mode-has-no-signing-secret",
        client=client,
        # Requests over HTTP are verified by _GuardedRequestHandler before Bolt sees them (Socket Mode has none).
        request_verification_enabled=False,
        # NOTE: our listeners only parse, record and hand work on (HandlerContext.accept, after_ack), so Bolt may
        # run them in the request's own thread and answer when they return. Its default runs them in a pool and
        # polls for ack() every 10 ms (slack_bolt/listener/thread_runner.py), which puts a 10 ms step in every
        # acknowledgement.
        process_before_response=True,
        # NOTE: Bolt's default pool has 5 threads and answers the 6th busy request 404 after 3 s (F2.5). With
        # process_before_response it only runs lazy listeners (we have none); kept large in case one is added.
        listener_executor=ThreadPoolExecutor(
            max_workers=listener_threads, thread_name_prefix="bolt-listener"
        ),
    )
    work_pool = ThreadPoolExecutor(max_workers=work_threads, thread_name_prefix="contract-work")
    store = inbox_engine(engine)
    inbox = Inbox(
        factory, store, clock, AckGate(), journal_dir=journal_dir(engine, settings.inbox_journal_dir)
    )
    ctx = HandlerContext(
        service=service,
        work_pool=work_pool,
        inbox=inbox,
        client=client,
        render=make_reply_renderer(calendar.zone),
        exporter=lambda fmt: build_export(factory, clock, calendar, fmt),
    )
    inbox.execute, inbox.deliver = ctx.execute, ctx.deliver
    if ack_budget is not None:  # the console answers in-process and can wait longer than Slack's 3 s
        ctx.ack_budget = ack_budget
    handlers.register(bolt, ctx)
    bot = ContractBot(
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
        work_pool=work_pool,
        inbox=inbox,
        identity=identity,
        _wake=wake,
        inbox_engine=store,
    )
    return bot
