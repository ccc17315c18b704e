"""Prometheus metrics, one registry per app so several instances can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from server import __version__


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        Info("telerounds_build", "Build information", registry=self.registry).info({"version": __version__})
        self.sockets = Gauge("telerounds_sockets", "Connected Socket.IO clients", ["namespace"], registry=self.registry)
        self.http_requests = Counter(
            "telerounds_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.events = Counter(
            "telerounds_socket_events", "Socket.IO events handled", ["event", "result"], registry=self.registry
        )
        self.wait_seconds = Histogram(
            "telerounds_consult_wait_seconds",
            "Time from consult request to accept",
            buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )

        self.offers = Counter("telerounds_consult_offers", "Consult offers made", ["urgency"], registry=self.registry)
        self.offers_expired = Counter(
            "telerounds_consult_offers_expired",
            "Consult offers that went unanswered",
            ["urgency"],
            registry=self.registry,
        )

        self.relayed = Counter("telerounds_relayed_signals", "rtc:signal messages relayed", registry=self.registry)

        self.note_writes = Counter("telerounds_note_writes", "Case notes stored", registry=self.registry)
        self.reconnects = Counter(
            "telerounds_call_reconnects",
            "Peers that took their place in a call back after a drop",
            registry=self.registry,
        )
        # The service's state, the same on every instance: read from Redis when scraped.
        self.queue_length = Gauge(
            "telerounds_queue_length", "Consult requests waiting, by specialty", ["specialty"], registry=self.registry
        )
        self.active_consults = Gauge(
            "telerounds_active_consults", "Specialists in a consult now (one consult each)", registry=self.registry
        )
        self.board_updates = Counter(
            "telerounds_board_updates", "Supervisor board updates sent by this instance", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
