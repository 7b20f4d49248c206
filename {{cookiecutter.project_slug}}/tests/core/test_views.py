import pytest

from core.views import wants_html

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
    response = anonymous_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_login_page_is_public(anonymous_client):
    assert anonymous_client.get("/accounts/login/").status_code == 200
