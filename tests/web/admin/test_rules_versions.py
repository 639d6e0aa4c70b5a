"""The Rules page's history, changes, rollback and draft; the incident form; the incident endpoint.

Each test serves its own copy of the shipped rules (a rollback or a promotion rewrites the file on
disk), and the app has published that copy (`first(app)`) before the test begins. Version numbers
come from the database's sequence, which a cleared PostgreSQL table does not reset: tests name
versions relative to the first.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.rules.store import RulesStore, Sources
from ivr.services import services
from tests.admin_support import ADMIN_PASSWORD, ADMIN_USER, create_admin, csrf_of, login
from tests.support import apply_edits, copy_project

TO_GENERAL = (
    '"5": {label: opt_app, queue: tech, issue: app_problem}',
    '"5": {label: opt_app, queue: general, issue: app_problem}',
)
TO_GENERAL_SAID = "main menu: option 5 now goes to queue general (was tech)"
EVERY_INSTANCE = "is live on every instance within 2 s"


@pytest.fixture
def app(app_factory: Callable[..., Flask], tmp_path: Path) -> Flask:
    rules, prompts = copy_project(tmp_path)
    built = app_factory(routing_rules=rules, voice_prompts=prompts)
    create_admin(built)
    with built.app_context():
        services().rules.sync()  # its first look at the store publishes the file
    return built


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client)
    return client


def store_of(app: Flask) -> RulesStore:
    store: RulesStore | None = app.extensions["ivr"].rules.store
    assert store is not None
    return store


def first(app: Flask) -> int:
    """The version the app published at its start."""
    return store_of(app).history()[0].id


def rules_file(app: Flask) -> Path:
    path: Path = app.extensions["ivr"].settings.routing_rules
    return path


def edited(app: Flask, *edits: tuple[str, str]) -> Sources:
    """The first version's files with `edits` made to the rules file."""
    started = store_of(app).sources(first(app))
    text, _ = apply_edits(started.rules_text, *edits)
    return Sources(text, started.catalogs)


def publish_edit(app: Flask, clock: FrozenClock) -> int:
    """The second version, live: option 5 of the main menu goes to the general queue."""
    version, new = store_of(app).publish(edited(app, TO_GENERAL), "cli:root", clock.now())
    assert new
    with app.app_context():
        services().rules.sync()
    return version.id


def page(client: FlaskClient, path: str = "/admin/rules") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def rows(html: str) -> dict[int, str]:
    """The history table's rows by version number, in page order."""
    table = re.search(r'<table id="versions".*?</table>', html, re.S)
    assert table is not None
    return {
        int(m.group(1)): m.group(0)
        for m in re.finditer(r'<tr data-version="(\d+)".*?</tr>', table.group(0), re.S)
    }


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def message_of(html: str) -> str:
    found = re.search(r'<div id="messages" role="status">(.*?)</div>', html, re.S)
    assert found is not None, "no message on the page"
    return text_of(found.group(1))


def basic(user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- history and changes --------------------------------------------------------------------------


def test_the_history_lists_every_version_newest_first_with_who_what_and_badges(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    one = first(app)
    clock.advance(60)
    two = publish_edit(app, clock)
    clock.advance(60)
    three = (
        store_of(app)
        .stage_draft(store_of(app).sources(one), "cli:root", clock.now(), "back to tech")
        .id
    )

    listed = rows(page(admin))
    assert list(listed) == [three, two, one]
    started, second, draft = (text_of(listed[n]) for n in (one, two, three))
    assert "edit of the rules file" in started and "file on" in started
    assert store_of(app).version(one).sha256[:12] in started
    assert "published" in second and "cli:root" in second and "live" in second
    assert "draft: back to tech" in draft
    assert "2026-11-23 15:02:00" in draft
    assert 'class="badge live"' in listed[two] and 'class="badge draft"' in listed[three]
    # the live version offers neither a comparison with itself nor a rollback to itself
    assert "Roll back" not in listed[two] and "Changes from live" not in listed[two]
    for other in (one, three):
        assert f'href="/admin/rules/versions/{other}"' in listed[other]
        assert f'name="version" value="{other}"' in listed[other]


def test_changes_from_live_speak_the_admins_language_and_show_the_rules_file(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    publish_edit(app, clock)
    html = page(admin, f"/admin/rules/versions/{first(app)}")
    changes = re.search(r'<ul class="changes" id="changes">(.*?)</ul>', html, re.S)
    assert changes is not None
    assert text_of(changes.group(1)) == "main menu: option 5 now goes to queue tech (was general)"
    shown = re.search(r'<pre class="rules-text" id="rules-text">(.*?)</pre>', html, re.S)
    assert unescape(shown.group(1)) == store_of(app).sources(first(app)).rules_text  # type: ignore[union-attr]
    assert admin.get("/admin/rules/versions/999999").status_code == 404


# --- rollback -------------------------------------------------------------------------------------


def test_a_rollback_makes_the_earlier_version_live_here_on_disk_and_in_the_store(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    one, two = first(app), publish_edit(app, clock)
    csrf = csrf_of(page(admin))
    response = admin.post("/admin/rules/rollback", data={"version": str(one), "csrf": csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/rules"

    html = page(admin)
    three = store_of(app).state().live_id
    assert three is not None and three > two
    assert message_of(html) == f"Version {three} (rollback to version {one}) {EVERY_INSTANCE}."
    assert store_of(app).version(three).based_on == one
    assert store_of(app).version(three).by == f"admin:{ADMIN_USER}"
    assert 'class="badge live"' in rows(html)[three]
    loaded = re.search(r'<dl id="rules-version">(.*?)</dl>', html, re.S)
    assert loaded is not None and f"Version {three} File hash" in text_of(loaded.group(1))
    assert rules_file(app).read_text() == store_of(app).sources(one).rules_text
    with app.app_context():
        assert services().rules.status().version == three  # this process serves it at once
    assert 'id="messages"' not in page(admin)  # said once


def test_a_rollback_without_the_csrf_token_is_refused_and_nothing_changes(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    two = publish_edit(app, clock)
    response = admin.post("/admin/rules/rollback", data={"version": str(first(app))})
    assert response.status_code == 400
    assert "CSRF token missing or wrong" in response.get_data(as_text=True)
    assert store_of(app).state().live_id == two


def test_a_rollback_to_a_version_that_does_not_exist_says_so(
    app: Flask, admin: FlaskClient
) -> None:
    csrf = csrf_of(page(admin))
    response = admin.post("/admin/rules/rollback", data={"version": "999999", "csrf": csrf})
    assert response.status_code == 400
    error = re.search(r'<p class="error" role="alert" id="rules-error">(.*?)</p>', response.text)
    assert error is not None
    assert unescape(error.group(1)) == (
        "Version 999999 was not rolled back to: there is no rules version 999999"
    )
    assert [v.id for v in store_of(app).history()] == [first(app)]


def test_without_a_session_the_pages_send_to_the_login_and_the_api_answers_401(
    app: Flask, clock: FrozenClock
) -> None:
    two = publish_edit(app, clock)
    anonymous = app.test_client()
    for path in ("/admin/rules", f"/admin/rules/versions/{first(app)}", "/admin/incident"):
        response = anonymous.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    response = anonymous.post("/admin/rules/rollback", data={"version": str(first(app))})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert store_of(app).state().live_id == two
    for method in ("GET", "POST", "DELETE"):
        response = anonymous.open("/admin/api/incident", method=method, json={"issues": ["login"]})
        assert response.status_code == 401
        assert "WWW-Authenticate" not in response.headers
    assert store_of(app).incidents() == []


# --- drafts ---------------------------------------------------------------------------------------


def test_a_draft_that_does_not_load_shows_its_problems_keeps_the_text_and_stores_nothing(
    app: Flask, admin: FlaskClient
) -> None:
    broken = store_of(app).sources(first(app)).rules_text.replace("brand: BitP", "brand: [BitP")
    csrf = csrf_of(page(admin))
    response = admin.post("/admin/rules/draft", data={"rules_text": broken, "csrf": csrf})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    problems = re.search(r'<div id="draft-problems" role="alert">(.*?)</div>', html, re.S)
    assert problems is not None
    assert "nothing was staged" in problems.group(1)
    assert re.search(r"<code>routing_rules\.yaml:\d+:\d+: ", problems.group(1))
    textarea = re.search(r'<textarea id="rules_text"[^>]*>(.*?)</textarea>', html, re.S)
    assert textarea is not None and unescape(textarea.group(1)) == broken
    assert [v.id for v in store_of(app).history()] == [first(app)]
    assert store_of(app).state().draft_id is None


def test_a_pasted_draft_is_staged_shown_with_its_changes_and_promoted(
    app: Flask, admin: FlaskClient
) -> None:
    pasted = edited(app, TO_GENERAL).rules_text
    csrf = csrf_of(page(admin))
    response = admin.post(
        "/admin/rules/draft",
        # a browser sends a textarea's line ends as CRLF
        data={"rules_text": pasted.replace("\n", "\r\n"), "note": "app to general", "csrf": csrf},
    )
    assert response.status_code == 302
    html = page(admin)
    one, draft = first(app), store_of(app).state().draft_id
    assert draft is not None
    assert message_of(html) == (
        f"Draft version {draft} is staged: tester numbers hear it on every instance within 2 s."
    )
    assert store_of(app).state().live_id == one
    assert store_of(app).version(draft).sha256 == edited(app, TO_GENERAL).sha256  # LF, as on disk
    assert store_of(app).sources(draft).catalogs == store_of(app).sources(one).catalogs
    changes = re.search(r'<ul class="changes" id="draft-changes">(.*?)</ul>', html, re.S)
    assert changes is not None and text_of(changes.group(1)) == TO_GENERAL_SAID
    with app.app_context():
        assert services().rules.status().draft == draft

    response = admin.post("/admin/rules/promote", data={"draft": str(draft), "csrf": csrf})
    assert response.status_code == 302
    html = page(admin)
    state = store_of(app).state()
    assert message_of(html) == f"Version {state.live_id} (draft {draft} promoted) {EVERY_INSTANCE}."
    assert state.live_id is not None and state.live_id > draft and state.draft_id is None
    assert "No draft is staged" in html
    assert rules_file(app).read_text() == pasted


def test_promoting_a_draft_other_than_the_one_shown_is_refused(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    shown = store_of(app).stage_draft(edited(app, TO_GENERAL), "cli:root", clock.now())
    csrf = csrf_of(page(admin))
    store_of(app).stage_draft(edited(app, ("brand: BitP", "brand: BitQ")), "cli:bob", clock.now())
    response = admin.post("/admin/rules/promote", data={"draft": str(shown.id), "csrf": csrf})
    assert response.status_code == 400
    assert "the draft changed meanwhile" in response.get_data(as_text=True)
    assert store_of(app).state().live_id == first(app)


def test_discarding_the_draft_lets_testers_hear_the_live_version(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    store_of(app).stage_draft(edited(app, TO_GENERAL), "cli:root", clock.now())
    csrf = csrf_of(page(admin))
    assert admin.post("/admin/rules/discard-draft", data={"csrf": csrf}).status_code == 302
    assert message_of(page(admin)) == "Draft discarded: testers hear the live version."
    assert store_of(app).state().draft_id is None
    with app.app_context():
        assert services().rules.status().draft is None


# --- incident: the form ---------------------------------------------------------------------------


def test_an_incident_started_with_the_form_is_on_and_ended_with_its_button(
    app: Flask, admin: FlaskClient, clock: FrozenClock
) -> None:
    html = page(admin, "/admin/incident")
    issues = re.findall(r'name="issues" value="([^"]+)"', html)
    assert "withdrawal" in issues and "deposit" in issues and "faq_hours" not in issues
    assert re.findall(r'name="languages" value="([^"]+)"', html) == [
        "zh-CN",
        "en-US",
        "fr-FR",
        "de-DE",
    ]
    csrf = csrf_of(html)
    response = admin.post(
        "/admin/incident",
        data={
            "issues": ["withdrawal", "deposit"],
            "eta": "2026-12-07 18:00 UTC",
            "languages": ["de-DE"],
            "csrf": csrf,
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/incident"
    html = page(admin, "/admin/incident")
    (number,) = [i.id for i in store_of(app).incidents()]
    assert (
        message_of(html)
        == f"Incident {number} is on: callers hear it on every instance within 2 s."
    )
    on = re.search(r'<section id="incident-on">(.*?)</section>', html, re.S)
    assert on is not None
    assert (
        f"Incident {number}: issues deposit, withdrawal, ETA 2026-12-07 18:00 UTC, languages de-DE"
        in (text_of(on.group(1)))
    )
    with app.app_context():
        incident = services().rules.status().incident
    assert incident is not None and incident.started_by == f"admin:{ADMIN_USER}"

    clock.advance(300)
    assert admin.post("/admin/incident/end", data={"csrf": csrf}).status_code == 302
    html = page(admin, "/admin/incident")
    assert message_of(html) == f"Incident {number} is off: callers no longer hear it."
    assert "No incident notice is on." in html and 'id="end-incident"' not in html
    history = re.findall(rf'<tr data-incident="{number}" data-event="(\w+)">', page(admin))
    assert history == ["end", "start"]  # on the Rules page, the newest first


def test_an_incident_form_with_a_time_without_zone_says_why_and_keeps_the_choices(
    app: Flask, admin: FlaskClient
) -> None:
    csrf = csrf_of(page(admin, "/admin/incident"))
    response = admin.post(
        "/admin/incident",
        data={"issues": ["withdrawal"], "eta": "2026-12-07 18:00", "csrf": csrf},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "has no time zone" in unescape(html)
    assert 'value="withdrawal" checked' in html and 'value="2026-12-07 18:00"' in html
    assert store_of(app).incidents() == []


# --- incident: the endpoint -----------------------------------------------------------------------


def test_a_paging_system_starts_reads_and_ends_an_incident_with_basic_auth(
    app: Flask, clock: FrozenClock
) -> None:
    pager = app.test_client()
    body = {"issues": ["withdrawal"], "eta": "2026-12-07 18:00 UTC", "languages": ["de-DE"]}
    response = pager.post("/admin/api/incident", json=body, headers=basic())
    assert response.status_code == 201, response.get_json()
    started = response.get_json()["incident"]
    assert started == {
        "id": store_of(app).incidents()[0].id,
        "issues": ["withdrawal"],
        "languages": ["de-DE"],
        "eta": "2026-12-07T18:00:00+00:00",
        "started_at": clock.now().isoformat(),
        "started_by": f"admin:{ADMIN_USER}",
        "ended_at": None,
        "ended_by": None,
    }
    assert "Set-Cookie" not in response.headers  # no session was made
    with app.app_context():
        assert services().rules.status().incident is not None

    assert pager.get("/admin/api/incident", headers=basic()).get_json() == {"on": started}
    response = pager.delete("/admin/api/incident", headers=basic())
    assert response.status_code == 200
    assert response.get_json()["ended"]["ended_by"] == f"admin:{ADMIN_USER}"
    assert pager.get("/admin/api/incident", headers=basic()).get_json() == {"on": None}
    assert pager.delete("/admin/api/incident", headers=basic()).get_json() == {"ended": None}


def test_the_endpoint_without_languages_concerns_every_language(app: Flask) -> None:
    response = app.test_client().post(
        "/admin/api/incident", json={"issues": ["deposit"]}, headers=basic()
    )
    assert response.status_code == 201
    assert response.get_json()["incident"]["languages"] is None
    assert response.get_json()["incident"]["eta"] is None


def test_a_wrong_password_gets_401_without_a_challenge_and_starts_nothing(app: Flask) -> None:
    response = app.test_client().post(
        "/admin/api/incident", json={"issues": ["withdrawal"]}, headers=basic(password="nope")
    )
    assert response.status_code == 401
    assert response.get_json() == {"error": "wrong user name or password"}
    assert "WWW-Authenticate" not in response.headers
    assert store_of(app).incidents() == []


def test_repeated_wrong_passwords_are_throttled(app: Flask) -> None:
    pager = app.test_client()
    answers = [
        pager.get("/admin/api/incident", headers=basic(password="nope")).status_code
        for _ in range(8)
    ]
    assert answers[0] == 401 and answers[-1] == 429
    response = pager.get("/admin/api/incident", headers=basic())  # the right one waits too
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"issues": ["withdrawl"]},
            "no menu option records the issue withdrawl (the menus have: account_compromised, "
            "account_other, app_problem, complaint, deposit, login, security_other, "
            "suspicious_withdrawal, "
            "transaction_records, verification, withdrawal)",
        ),
        ({"issues": ["deposit"], "languages": ["it-IT"]}, "the line does not speak it-IT"),
        ({"issues": ["deposit"], "eta": "tomorrow"}, "'tomorrow' is not a time"),
        ({"issues": ["deposit"], "eta": "2026-11-01 10:00 UTC"}, "has passed"),
        ({"eta": "2026-12-07 18:00 UTC"}, "name the issues it concerns"),
        ({"issues": "deposit"}, '"issues" is a list of texts'),
        ({"issues": ["deposit"], "until": "later"}, "unknown field until"),
        ([], "send a JSON object"),
    ],
)
def test_bad_input_gets_400_with_a_sentence(app: Flask, body: object, error: str) -> None:
    response = app.test_client().post("/admin/api/incident", json=body, headers=basic())
    assert response.status_code == 400
    assert error in response.get_json()["error"]
    assert store_of(app).incidents() == []


def test_a_logged_in_session_uses_the_endpoint_with_its_csrf_token(
    app: Flask, admin: FlaskClient
) -> None:
    body = {"issues": ["withdrawal"]}
    assert admin.post("/admin/api/incident", json=body).status_code == 400  # no token
    assert store_of(app).incidents() == []
    csrf = csrf_of(page(admin))
    response = admin.post("/admin/api/incident", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201
    assert admin.get("/admin/api/incident").get_json()["on"]["issues"] == ["withdrawal"]
    response = admin.delete("/admin/api/incident", headers={"X-CSRF-Token": csrf})
    ended = response.get_json()["ended"]
    assert response.status_code == 200 and ended["id"] == store_of(app).incidents()[0].id
