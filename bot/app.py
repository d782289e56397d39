"""The app factory: builds the Bolt app, services, outbox delivery and scheduler from settings and injected parts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from slack_bolt import App
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
from bot.services.exports import build_export
from bot.services.outbox import OutboxDispatcher
from bot.services.reminders import ReminderSweeper
from bot.services.reviews import ReviewService
from handlers.blocks import render_outbox
from handlers.context import HandlerContext
from handlers.replies import make_reply_renderer
from storage.db import SessionFactory, make_engine, migrate, ping, session_factory

log = logging.getLogger("contract_bot")


def make_web_client(settings: Settings) -> WebClient:
    """A WebClient for Slack (or GovSlack, a proxy, a test double) with retries for 429, 5xx and dropped connections."""
    kwargs = {"base_url": settings.slack_api_url.rstrip("/") + "/"} if settings.slack_api_url else {}
    return WebClient(
        token=settings.slack_bot_token, timeout=15,
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
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _scheduler: object | None = None

    def __post_init__(self) -> None:
        self._slack_handler = SlackRequestHandler(self.bolt)

    def wsgi(self, environ: dict, start_response: Callable) -> list[bytes]:
        """WSGI entry: POST /slack/events to Bolt, GET /healthz reports whether the database answers."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy = ping(self.engine)
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok" if healthy else b"database unavailable"]
        if path == "/slack/events":
            return self._slack_handler(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def wake_delivery(self) -> None:
        """Tell the delivery loop there is something to send."""
        self._wake.set()

    def start_background(self, *, scheduler: bool = True) -> None:
        """Start outbox delivery and (optionally) the APScheduler reminder jobs in this process."""
        t = threading.Thread(target=self._delivery_loop, name="outbox-delivery", daemon=True)
        t.start()
        self._threads.append(t)
        if scheduler:
            from bot.scheduler import start_scheduler

            self._scheduler = start_scheduler(self)

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.dispatcher.deliver_due()
            except Exception:  # noqa: BLE001 - keep delivering; the rows stay in the outbox
                log.exception("outbox delivery pass failed")

    def stop(self) -> None:
        """Stop background work (waits for the delivery thread) and release the pool."""
        self._stop.set()
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        for t in self._threads:
            t.join(timeout=10)
        self.work_pool.shutdown(wait=True)
        self.engine.dispose()


def create_app(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None,
               client: WebClient | None = None, listener_threads: int = 32, work_threads: int = 16) -> ContractBot:
    """Build everything from settings; tests inject their own engine, clock and Slack client."""
    engine = engine or make_engine(settings.database_url)
    migrate(engine)
    factory = session_factory(engine)
    clock = clock or SystemClock()
    calendar = BusinessCalendar(settings.bot_timezone)
    client = client or make_web_client(settings)
    wake = threading.Event()
    service = ReviewService(factory, clock, calendar, settings, on_commit=wake.set)
    dispatcher = OutboxDispatcher(factory, client, clock, render_outbox, calendar)
    sweeper = ReminderSweeper(factory, clock, calendar, settings, on_commit=wake.set)
    bolt = App(
        token=settings.slack_bot_token or "xoxb-not-configured",
        signing_secret=settings.slack_signing_secret or "socket-mode-has-no-signing-secret",
        client=client,
        token_verification_enabled=False,  # `serve` checks the token itself with a clear message
        request_verification_enabled=not settings.socket_mode,
        process_before_response=False,
        # NOTE: Bolt's default pool has 5 threads and answers the 6th busy request 404 after 3 s (F2.5).
        # Listeners here only parse and hand work to our own pool, so a bigger pool keeps acks fast.
        listener_executor=ThreadPoolExecutor(max_workers=listener_threads, thread_name_prefix="bolt-listener"),
    )
    work_pool = ThreadPoolExecutor(max_workers=work_threads, thread_name_prefix="contract-work")
    ctx = HandlerContext(service=service, work_pool=work_pool, render=make_reply_renderer(calendar.zone),
                         exporter=lambda fmt: build_export(factory, clock, calendar, fmt))
    handlers.register(bolt, ctx)
    bot = ContractBot(settings=settings, engine=engine, session_factory=factory, clock=clock, calendar=calendar,
                      client=client, bolt=bolt, service=service, dispatcher=dispatcher, sweeper=sweeper,
                      work_pool=work_pool, _wake=wake)
    return bot
