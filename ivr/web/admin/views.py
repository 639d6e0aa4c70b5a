"""The admin dashboard's pages and its JSON API, all under /admin and behind a login.

`before_request` refuses every URL but the login page without a live session (HTML: a redirect
to the login page; `/admin/api/*`: 401 JSON), then refuses any POST without the session's CSRF
token (400). `after_request` adds the security headers. Each view gathers (`figures`, the ticket
listing) and renders; escaping is Jinja's autoescape, and caller numbers are masked everywhere.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup, escape
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import BadRequest

from ivr.admin.accounts import AdminFileError
from ivr.rules.cli import incident_json
from ivr.rules.loader import RulesError
from ivr.rules.release import (
    Files,
    Released,
    issues_of,
    promote,
    rollback,
    start_incident_as_written,
)
from ivr.rules.store import RulesStore, StoreError
from ivr.services import services
from ivr.tickets import listing
from ivr.tickets.changes import Outcome
from ivr.tickets.reads import find_by_reference
from ivr.web.admin import auth, figures, releases
from ivr.web.admin.chart import bar_chart

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
BASIC_AUTH_ENDPOINTS: Final = frozenset(
    {"admin.api_incident", "admin.api_incident_start", "admin.api_incident_end"}
)
"""Where a paging system may send an admin account's name and password (HTTP Basic) with each
request instead of logging in: no browser session is involved, so no CSRF token either."""
DATABASE_AWAY: Final = "The rules history cannot be read now: the database is away."

log = logging.getLogger("ivr.admin.views")  # the name its log lines have always carried

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
    """No admin URL but the login page without a live session; no POST without the CSRF token.

    The incident endpoint also takes HTTP Basic with an admin account instead (`_basic_login`)."""
    if request.endpoint in BASIC_AUTH_ENDPOINTS and request.authorization is not None:
        return _basic_login()
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


def _basic_login() -> Any:
    """Let the request through (None) when its HTTP Basic credentials are an admin's, checked
    through the same throttle as the login form; else a JSON refusal. Never a WWW-Authenticate
    challenge: a browser must not learn to send a password by itself (no CSRF token is asked)."""
    given = request.authorization
    if given is None or given.type != "basic" or not given.username:
        return jsonify(error="send an admin account's name and password with HTTP Basic"), 401
    try:
        found = auth.check_password(given.username, given.password or "")
    except AdminFileError:
        return jsonify(error="the admin accounts file cannot be read"), 503
    if found.outcome == "throttled":
        wait = math.ceil(found.wait)
        refused = jsonify(error=f"too many wrong passwords from here: try again in {wait} s")
        return refused, 429, {"Retry-After": str(wait)}
    if found.outcome in ("unavailable", "busy"):
        why = "Redis is away" if found.outcome == "unavailable" else "too many checks at once"
        return jsonify(error=f"passwords cannot be checked now ({why}): try again shortly"), 503
    if found.outcome != "right":
        return jsonify(error="wrong user name or password"), 401
    g.admin_user = given.username
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
        "moment": moment,
        "unattended": unattended,
    }


def unattended() -> list[dict[str, Any]]:
    """The lines where callers wait with no agent logged in, for the banner on every page; none
    when the queue store cannot be asked (the page still shows, the queues page says why)."""
    try:
        return figures.unattended(services())
    except RedisError:
        log.warning("the unattended lines could not be read for the banner", exc_info=True)
        return []


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
    return _rules_page()


def _rules_page(http_status: int = 200, /, **context: Any) -> tuple[str, int]:
    """The Rules page: the loaded version, its history, the draft, incidents and the diagram;
    `context` adds what a refused change needs shown (its error, the pasted text)."""
    s = services()
    drawn = _diagram()  # first: asking for the rules takes an edited file up, or notes its problem
    status = s.rules.status()
    return _page(
        "admin/rules.html",
        http_status,
        status=status,
        problems=[str(p) for p in status.problems],
        **drawn,
        reload_seconds=f"{s.settings.rules_reload_seconds:g}",
        **_history(_store()),
        **context,
    )


@bp.get("/rules/diagram")
def rules_diagram() -> Any:
    """The menu diagram alone, at its full size, for reading a large call flow."""
    return _page("admin/diagram.html", **_diagram())


def _diagram() -> dict[str, Any]:
    """The live rules' diagram as inline SVG in the language asked for (`?language=`), or why
    there is none, and the languages to choose from."""
    bundle = services().rules.get()
    language = request.args.get("language") or None
    if language is not None and language not in bundle.rules.language_codes:
        language = None
    from ivr import diagram

    try:
        svg: str | None = diagram.diagram_svg(bundle, language)
        missing = None
    except diagram.DiagramUnavailable as exc:
        svg, missing = None, str(exc)
    languages = bundle.rules.language_codes
    return {"svg": svg, "missing": missing, "languages": languages, "language": language}


def _history(store: RulesStore) -> dict[str, Any]:
    """The versions (newest first), the draft's changes from live and the incident history; a
    sentence instead when the database cannot be read."""
    try:
        versions = releases.newest_first(store)
        draft = next((v for v in versions if v.draft), None)
        events = releases.incident_events(store.incidents())
    except SQLAlchemyError:
        log.exception("the rules history could not be read")
        return {"versions": [], "events": [], "draft": None, "unread": DATABASE_AWAY}
    draft_changes: list[str] | None = None
    if draft is not None:
        try:
            draft_changes = releases.changes_from_live(store, draft.id)
        except (StoreError, RulesError) as exc:
            draft_changes = [f"cannot compare with the live version: {exc}"]
    return {"versions": versions, "draft": draft, "draft_changes": draft_changes, "events": events}


def _store() -> RulesStore:
    store = services().rules.store
    if store is None:  # create_app always gives one; a hand-built LiveRules may not
        abort(503, "this service keeps no rules versions (no database)")
    return store


def _by() -> str:
    return f"admin:{g.admin_user}"


def _within() -> str:
    return f"every instance within {services().settings.rules_reload_seconds:g} s"


def _files() -> Files:
    settings = services().settings
    return Files(settings.routing_rules, settings.voice_prompts)


def _released(released: Released) -> Any:
    """Take the change up in this process, and tell the admin on the page they go back to."""
    services().rules.sync()
    version = released.version
    flash(f"Version {version.id} ({version.summary}) is live on {_within()}.", "done")
    if released.files_note:
        flash(f"Note: {released.files_note}.", "error")
    return redirect(url_for("admin.rules"))


def _form_version(field: str) -> int:
    try:
        return int(request.form.get(field, ""))
    except ValueError:
        raise BadRequest(f"no version number in the form ({field!r})") from None


@bp.get("/rules/versions/<int:version_id>")
def rules_version(version_id: int) -> Any:
    store = _store()
    try:
        version = store.version(version_id)
        text = store.sources(version_id).rules_text
    except StoreError:
        abort(404)
    try:
        changes, error = releases.changes_from_live(store, version_id), None
    except (StoreError, RulesError) as exc:
        changes, error = [], str(exc)
    return _page("admin/version.html", version=version, changes=changes, error=error, text=text)


@bp.post("/rules/rollback")
def rules_rollback() -> Any:
    version_id = _form_version("version")
    try:
        released = rollback(_store(), version_id, _by(), services().clock.now(), _files())
    except (StoreError, RulesError) as exc:
        return _rules_page(400, error=f"Version {version_id} was not rolled back to: {exc}")
    return _released(released)


@bp.post("/rules/draft")
def rules_draft() -> Any:
    store, text = _store(), request.form.get("rules_text", "")
    note = request.form.get("note", "").strip()
    try:
        draft = store.stage_draft(
            releases.pasted_sources(store, text), _by(), services().clock.now(), note
        )
    except RulesError as exc:
        problems = [str(p) for p in exc.problems]  # of `routing_rules.yaml`, as pasted
        return _rules_page(400, draft_problems=problems, draft_text=text, draft_note=note)
    except StoreError as exc:
        return _rules_page(400, error=str(exc), draft_text=text, draft_note=note)
    services().rules.sync()
    flash(f"Draft version {draft.id} is staged: tester numbers hear it on {_within()}.", "done")
    return redirect(url_for("admin.rules"))


@bp.post("/rules/promote")
def rules_promote() -> Any:
    store, shown = _store(), _form_version("draft")
    try:
        if store.state().draft_id != shown:
            raise StoreError("the draft changed meanwhile: look at its changes again")
        released = promote(store, _by(), services().clock.now(), _files())
    except (StoreError, RulesError) as exc:
        return _rules_page(400, error=f"The draft was not promoted: {exc}")
    return _released(released)


@bp.post("/rules/discard-draft")
def rules_discard_draft() -> Any:
    dropped = _store().drop_draft(services().clock.now())
    services().rules.sync()
    flash("Draft discarded: testers hear the live version." if dropped else "There was no draft.")
    return redirect(url_for("admin.rules"))


# --- incident notice ------------------------------------------------------------------------------


@bp.get("/incident")
def incident() -> Any:
    return _incident_page()


def _incident_page(http_status: int = 200, /, **context: Any) -> tuple[str, int]:
    store = _store()
    rules, languages = releases.issues_and_languages(store, services().rules.get().rules)
    return _page(
        "admin/incident.html",
        http_status,
        on=store.state().incident,
        issues=issues_of(rules),
        languages=languages,
        events=releases.incident_events(store.incidents()),
        chosen={"issues": [], "languages": [], "eta": ""} | context.pop("chosen", {}),
        **context,
    )


@bp.post("/incident")
def incident_start() -> Any:
    store = _store()
    rules, _ = releases.issues_and_languages(store, services().rules.get().rules)
    issues, languages = request.form.getlist("issues"), request.form.getlist("languages")
    eta = request.form.get("eta", "")
    try:
        started = start_incident_as_written(
            store, rules, issues, eta, languages or None, _by(), services().clock.now()
        )
    except StoreError as exc:
        chosen = {"issues": issues, "languages": languages, "eta": eta}
        return _incident_page(400, error=f"The incident was not started: {exc}", chosen=chosen)
    services().rules.sync()
    flash(f"Incident {started.id} is on: callers hear it on {_within()}.", "done")
    return redirect(url_for("admin.incident"))


@bp.post("/incident/end")
def incident_end() -> Any:
    ended = _store().end_incident(_by(), services().clock.now())
    services().rules.sync()
    flash(
        "No incident notice was on."
        if ended is None
        else f"Incident {ended.id} is off: callers no longer hear it.",
        "done",
    )
    return redirect(url_for("admin.incident"))


@bp.get("/api/incident")
def api_incident() -> Any:
    on = _store().state().incident
    return jsonify(on=None if on is None else incident_json(on))


@bp.post("/api/incident")
def api_incident_start() -> Any:
    store = _store()
    rules, _ = releases.issues_and_languages(store, services().rules.get().rules)
    try:
        issues, eta, languages = releases.incident_request(request.get_json(silent=True))
        started = start_incident_as_written(
            store, rules, issues, eta, languages, _by(), services().clock.now()
        )
    except StoreError as exc:
        return jsonify(error=str(exc)), 400
    services().rules.sync()
    return jsonify(incident=incident_json(started)), 201


@bp.delete("/api/incident")
def api_incident_end() -> Any:
    ended = _store().end_incident(_by(), services().clock.now())
    services().rules.sync()
    return jsonify(ended=None if ended is None else incident_json(ended))


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


MOMENT_FORMATS: Final = {
    "minute": "%Y-%m-%d %H:%M UTC",
    "second": "%Y-%m-%d %H:%M:%S UTC",
    "time": "%H:%M:%S UTC",
}
"""How much of an instant a page shows (`moment`); static/times.js shows as much, in the browser's
own time zone."""


def moment(
    value: datetime | str | None, show: Literal["minute", "second", "time"] = "minute"
) -> Markup:
    """An instant for a page: `<time>` with the exact ISO instant, its text in UTC without
    microseconds (readable with scripts off), which static/times.js rewrites in the admin's zone."""
    if value is None or value == "":
        return Markup("")
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    at = at.astimezone(UTC)
    text = at.strftime(MOMENT_FORMATS[show])
    return Markup(
        f'<time datetime="{escape(at.isoformat())}" data-show="{show}" title="{text}">{text}</time>'
    )
