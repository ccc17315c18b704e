"""HTTP handlers, thin: parse, authenticate, call the domain, answer JSON."""

from aiohttp import web

from server.http import accounts, admin, consults, health, ice, precall, recordings, roster, rounds, stats


def add_routes(app: web.Application) -> None:
    app.add_routes(health.routes)
    app.add_routes(accounts.routes)
    app.add_routes(roster.routes)
    app.add_routes(precall.routes)
    app.add_routes(recordings.routes)
    app.add_routes(ice.routes)
    app.add_routes(consults.routes)
    app.add_routes(stats.routes)
    app.add_routes(admin.routes)
    app.add_routes(rounds.routes)
