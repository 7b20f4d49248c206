import re

import pytest
from django.conf import settings

from core.views import wants_html
from tests.conftest import make_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", True),
    ],
)
def test_json_unless_the_client_prefers_html(rf, accept, html):
    request = rf.get("/", headers={"Accept": accept} if accept else {})
    assert wants_html(request) is html


def test_home_lists_only_the_users_own_work(owner_client, other_client):
    other_client.post(
        "/notifications/",
        {"subject": "Secret", "message": "m", "recipients": "a@example.org"},
    )
    owner_client.post(
        "/notifications/",
        {"subject": "Mine", "message": "m", "recipients": "a@example.org"},
    )
    page = owner_client.get("/").content.decode()
    assert "Mine" in page
    assert "Secret" not in page


@pytest.mark.parametrize(
    "url", ["/", "/photos/", "/notifications/", "/photos/1/status/"]
)
def test_every_page_needs_a_login(anonymous_client, url):
    response = anonymous_client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", ["/", "/photos/", "/photos/1/status/"])
def test_an_api_client_without_a_login_gets_401(anonymous_client, url):
    response = anonymous_client.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"error": "Log in first."}


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/photos/999/status/", 404),
        ("get", "/no/such/page/", 404),
        ("put", "/photos/", 405),
        ("delete", "/notifications/", 405),
    ],
)
def test_every_error_is_json_for_an_api_client(owner_client, method, url, status):
    response = getattr(owner_client, method)(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].endswith(".")


def test_a_browser_still_gets_the_html_error_page(owner_client, settings):
    settings.DEBUG = False  # as in production: the project's own page
    response = owner_client.get("/no/such/page/", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<h1>Not found</h1>" in page
    assert 'href="/">Back to your recent work</a>' in page


def test_every_page_names_its_icon_and_stylesheet_which_are_served(owner_client):
    """A favicon of the site's own: no request for /favicon.ico fails."""
    from django.contrib.staticfiles import finders

    page = owner_client.get("/", headers={"Accept": "text/html"}).content.decode()
    links = re.findall(r'<link rel="(icon|stylesheet)" href="/static/([^"]+)"', page)
    assert [rel for rel, _ in links] == ["icon", "stylesheet"]
    for _, path in links:
        assert finders.find(path), path


def test_a_missing_csrf_token_is_a_json_403(owner):
    client = make_client(owner)
    client.handler.enforce_csrf_checks = True
    response = client.post("/notifications/", {"subject": "s"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


class Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [("application/json", "application/json"), ("text/html", "text/plain")],
)
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    owner_client, accept, content_type
):
    response = owner_client.generic(
        "POST",
        "/photos/",
        content_type="multipart/form-data; boundary=x",
        headers={"Accept": accept},
        CONTENT_LENGTH=str(settings.REQUEST_MAX_BYTES + 1),
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith(content_type)
    assert b"too large" in response.content


def test_pages_carry_a_content_security_policy(owner_client):
    response = owner_client.get("/", headers={"Accept": "text/html"})
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_no_template_has_inline_script_or_style_the_policy_would_block():
    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        html = path.read_text()
        assert "<style" not in html, path
        assert " style=" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path


def test_hsts_is_one_year_without_preload_or_subdomains_by_default():
    assert settings.SECURE_HSTS_PRELOAD is False
    assert settings.SECURE_HSTS_INCLUDE_SUBDOMAINS is False


def test_login_page_is_public(anonymous_client):
    assert anonymous_client.get("/accounts/login/").status_code == 200


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="PostgreSQL's own session setting",
)
def test_postgresql_ends_transactions_left_idle():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone() == ("1min",)


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="libpq's own connection setting",
)
def test_a_query_into_a_cut_network_is_given_up_after_a_minute():
    from django.db import connection

    connection.ensure_connection()
    parameters = connection.connection.info.get_parameters()
    assert parameters["tcp_user_timeout"] == "60000"  # ms


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="PostgreSQL's own session settings",
)
def test_the_server_closes_the_connection_of_a_host_gone_within_a_minute():
    """Over TCP, the server probes an idle connection after 30 s (then 3
    times, 10 s apart) and gives up an unanswered send after 1 min."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('tcp_keepalives_idle'),"
            " current_setting('tcp_keepalives_interval'),"
            " current_setting('tcp_keepalives_count'),"
            " current_setting('tcp_user_timeout')"
        )
        assert cursor.fetchone() == ("30", "10", "3", "60000")  # s, s, -, ms
