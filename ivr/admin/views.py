"""The admin dashboard's pages and its JSON API, all under /admin and behind a login.

`before_request` refuses every URL but the login page without a live session (HTML: a redirect
to the login page; `/admin/api/*`: 401 JSON), then refuses any POST without the session's CSRF
token (400). `after_request` adds the security headers. Each view gathers (`figures`, the ticket
listing) and renders; escaping is Jinja's autoescape, and caller numbers are masked everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import BadRequest

from ivr.admin import auth, figures
from ivr.admin.accounts import AdminFileError
from ivr.admin.chart import bar_chart
from ivr.services import services
from ivr.tickets import listing
from ivr.tickets.changes import Outcome
from ivr.tickets.service import find_by_reference

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE: Final = 50
EXPORT_LIMIT: Final = 10_000
"""Most tickets one CSV or JSON export holds (narrow the filters for more)."""
OPEN_ENDPOINTS: Final = frozenset({"admin.login", "admin.root"})

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.before_request
def require_login() -> Any:
    """No admin URL but the login page without a live session; no POST without the CSRF token."""
    if request.endpoint not in OPEN_ENDPOINTS:
        g.admin_user = auth.current_user()
        if g.admin_user is None:
            if request.path.startswith("/admin/api/"):
                return jsonify(error="not logged in (or the session expired)"), 401
            return redirect(url_for("admin.login"))
    if not auth.csrf_ok():
        return _page(
            "admin/error.html", 400, message="CSRF token missing or wrong: reload the page"
        )
    return None


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Every response under /admin, an unknown URL's 404 included, carries the security headers."""
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        response.headers.update(SECURITY_HEADERS)
    return response


@bp.get("", strict_slashes=True)
def root() -> Any:
    """`/admin` to `/admin/`, with a relative Location: never one built from the Host header."""
    return redirect(f"{request.script_root}{bp.url_prefix}/", 308)


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    return {
        "csrf_token": auth.csrf_token,
        "mask": listing.mask_number,
        "duration": duration,
        "percent": percent,
        "share": share,
    }


def _page(template: str, http_status: int = 200, /, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), http_status


# --- login ----------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return _page("admin/login.html")
    user = request.form.get("username", "").strip()
    try:
        found = auth.check_password(user, request.form.get("password", ""))
    except AdminFileError:
        return _page("admin/login.html", 503, error="The admin accounts file cannot be read.")
    if found.outcome == "throttled":
        minutes = math.ceil(found.wait / 60)
        message = f"Too many wrong passwords from here: try again in {minutes} minute(s)."
        return _page("admin/login.html", 429, error=message, username=user)
    if found.outcome in ("unavailable", "busy"):
        message = (
            "Logging in is not possible now: wrong passwords cannot be counted while the queue "
            "store (Redis) is away. Try again shortly."
            if found.outcome == "unavailable"
            else "Too many logins at once: try again in a moment."
        )
        return _page("admin/login.html", 503, error=message, username=user)
    if found.outcome != "right":
        return _page("admin/login.html", 401, error="Wrong user name or password", username=user)
    auth.log_in(user)
    return redirect(url_for("admin.queues"))


@bp.post("/logout")
def logout() -> Any:
    if not auth.log_out():
        message = "Logged out here, but the server could not end the session: Redis is away."
        return _page("admin/login.html", 503, error=message)
    return redirect(url_for("admin.login"))


# --- live queues ----------------------------------------------------------------------------------


@bp.get("/")
def queues() -> Any:
    return _page("admin/queues.html", live=figures.live_queues(services()))


@bp.get("/api/queues")
def api_queues() -> Response:
    return jsonify(figures.live_queues(services()))


# --- today ----------------------------------------------------------------------------------------


@bp.get("/today")
def today() -> Any:
    data = figures.today(services())
    hours = [datetime.fromisoformat(h["hour"]) for h in data["last_24h"]]
    chart = bar_chart(hours, [h["calls"] for h in data["last_24h"]], element_id="last-24h")
    return _page("admin/today.html", today=data, chart=chart)


@bp.get("/api/today")
def api_today() -> Response:
    return jsonify(figures.today(services()))


# --- tickets --------------------------------------------------------------------------------------


def _filter() -> listing.TicketFilter:
    try:
        return listing.TicketFilter.from_args(request.args)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page") or 1))
    except ValueError:
        return 1


@bp.get("/tickets")
def tickets() -> Any:
    try:
        chosen = listing.TicketFilter.from_args(request.args)
    except ValueError as exc:
        return _page(
            "admin/tickets.html",
            400,
            error=str(exc),
            tickets=[],
            total=0,
            page=1,
            pages=1,
            args=request.args,
            filters={},
            outcomes=[o.value for o in Outcome],
        )
    page = _page_number()
    with services().db.sessions() as session:
        total = listing.count_tickets(session, chosen)
        found = listing.find_tickets(
            session, chosen, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return _page(
        "admin/tickets.html",
        tickets=found,
        total=total,
        page=page,
        pages=pages,
        args=request.args,
        filters=chosen.as_args(),
        outcomes=[o.value for o in Outcome],
    )


@bp.get("/tickets.csv")
def tickets_csv() -> Response:
    chosen = _filter()
    with services().db.sessions() as session:
        found = listing.find_tickets(session, chosen, limit=EXPORT_LIMIT)
    return Response(
        listing.csv_of(found),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )


@bp.get("/api/tickets")
def api_tickets() -> Response:
    chosen = _filter()
    page = _page_number()
    with services().db.sessions() as session:
        total = listing.count_tickets(session, chosen)
        found = listing.find_tickets(
            session, chosen, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    return jsonify(
        total=total,
        page=page,
        page_size=PAGE_SIZE,
        tickets=[listing.ticket_row(t) for t in found],
    )


@bp.get("/tickets/<reference>")
def ticket(reference: str) -> Any:
    with services().db.sessions() as session:
        found = find_by_reference(session, reference)
        if found is None:
            abort(404)
        story = listing.timeline(session, found)
    recording = found.recording_url
    if recording and not recording.startswith(("https://", "http://")):
        recording = None  # only web links, never javascript: or the like
    return _page(
        "admin/ticket.html",
        ticket=found,
        row=listing.ticket_row(found),
        said=listing.said_line(found),
        timeline=story,
        recording=recording,
    )


# --- rules ----------------------------------------------------------------------------------------


@bp.get("/rules")
def rules() -> Any:
    s = services()
    bundle = s.rules.get()
    status = s.rules.status()
    language = request.args.get("language") or None
    if language is not None and language not in bundle.rules.language_codes:
        language = None
    from ivr import diagram

    try:
        svg: str | None = diagram.diagram_svg(bundle, language)
        missing = None
    except diagram.DiagramUnavailable as exc:
        svg, missing = None, str(exc)
    return _page(
        "admin/rules.html",
        status=status,
        problems=[str(p) for p in status.problems],
        svg=svg,
        missing=missing,
        languages=bundle.rules.language_codes,
        language=language,
    )


@bp.errorhandler(400)
def bad_request(error: BadRequest) -> Any:
    if request.path.startswith("/admin/api/"):
        return jsonify(error=error.description), 400
    return _page("admin/error.html", 400, message=error.description)


@bp.errorhandler(404)
def not_found(error: Exception) -> Any:
    if request.path.startswith("/admin/api/"):
        return jsonify(error="not found"), 404
    return _page("admin/error.html", 404, message="Nothing here: no such ticket or page.")


# --- formatting for the templates -----------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """ "1 min 05 s" style, or an en dash when unknown."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.0f} %"


def share(figure: Mapping[str, Any]) -> str:
    """A share with its counts, "12 % (3 of 25)", or an en dash when nobody was counted."""
    if not figure["whole"]:
        return "–"
    return f"{percent(figure['ratio'])} ({figure['part']} of {figure['whole']})"
