"""Statistics over HTTP: figures as JSON or CSV, and the printable monthly report. Supervisors and admins."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from server.actions import stats
from server.actions.monthly_report import report_html
from server.http.common import client_address, printable_page, require_account, services_of
from server.policy.scope import hospital_scope
from server.records import audit
from server.records.consults import VIETNAM
from server.records.provinces import describe
from server.records.users import Account

routes = web.RouteTableDef()


async def _supervisor(request: web.Request) -> Account:
    """The signed-in supervisor or admin (the rules of server/policy/permissions.py, applied before any handler)."""
    return await require_account(request)


@routes.get("/api/stats")
async def get_stats(request: web.Request) -> web.Response:
    account = await _supervisor(request)
    services = services_of(request)
    start, end = stats.parse_period(request.query.get("from"), request.query.get("to"), datetime.now(UTC))
    group_by = stats.parse_group_by(request.query.get("group_by"))
    wanted = stats.parse_format(request.query.get("format"))
    lang = stats.parse_csv_lang(request.query.get("lang"))
    in_scope = hospital_scope(account)
    rows, names = await stats.load(services.db, start, end, in_scope)
    report = stats.summarize(rows, start, end, group_by, names)
    await audit.record(
        services.db,
        account.id,
        "stats.read",
        "stats",
        in_scope.audit_target,
        client_address(request),
        f"from={report['from']} to={report['to']} group_by={group_by or ''}",
    )
    if wanted == "csv" or (wanted is None and stats.wants_csv(request.headers.get("Accept", ""))):
        first, last = start.astimezone(VIETNAM), end.astimezone(VIETNAM)
        filename = f"telerounds-stats-{first:%Y%m%d}-{last:%Y%m%d}{'-' + group_by if group_by else ''}.csv"
        return web.Response(
            text=stats.csv_text(report, lang),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )
    return web.json_response(
        {**report, "scope": await describe(services.db, in_scope)},
        headers={"Cache-Control": "private, no-store"},
    )


@routes.get("/api/stats/report")
async def get_report(request: web.Request) -> web.Response:
    account = await _supervisor(request)
    services = services_of(request)
    now = datetime.now(UTC)
    month, start, end = stats.parse_month(request.query.get("month"), now)
    in_scope = hospital_scope(account)
    rows, names = await stats.load(services.db, start, end, in_scope)
    await audit.record(
        services.db,
        account.id,
        "stats.report",
        "stats",
        in_scope.audit_target,
        client_address(request),
        f"month={month}",
    )
    described = await describe(services.db, in_scope)
    html = report_html(
        month=month,
        scope_name=described["name"] if described else None,
        start=start,
        end=end,
        by_pair=stats.summarize(rows, start, end, "pair", names),
        by_specialty=stats.summarize(rows, start, end, "specialty", names),
        generated_at=now,
        includes_demo=any(r.demo for r in rows),
    )
    return printable_page(html)
