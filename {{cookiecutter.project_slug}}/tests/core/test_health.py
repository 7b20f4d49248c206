"""The health check the probes use (core/health.py): GET /healthz/."""

import pytest
from django.db import connection
from django.test import Client

from tests.conftest import free_port


@pytest.fixture
def database_gone(transactional_db):
    """The database cannot be reached: the connection is closed and points
    at nothing (no server on the port; on SQLite, a folder that does not
    exist). Restored before the database is cleaned up."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/folder/db.sqlite3"
    else:
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = free_port()
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.fixture
def plain_http(settings):
    """A client on plain HTTP, as the kubelet probes, with HTTPS enforced."""
    settings.SECURE_SSL_REDIRECT = True
    return Client()


@pytest.mark.django_db
def test_healthy_database_answers_200_ok_without_login(plain_http):
    response = plain_http.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_unreachable_database_answers_503_without_details(database_gone, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/healthz/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


@pytest.mark.django_db
def test_health_check_is_not_redirected_to_https_unlike_other_pages(plain_http):
    assert plain_http.get("/healthz/").status_code == 200
    other = plain_http.get("/accounts/login/")
    assert other.status_code == 301
    assert other["Location"].startswith("https://")


@pytest.mark.django_db
def test_health_check_answers_only_reads(plain_http):
    assert plain_http.head("/healthz/").status_code == 200
    assert plain_http.post("/healthz/").status_code == 405
