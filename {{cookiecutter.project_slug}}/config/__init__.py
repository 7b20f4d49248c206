"""The project's configuration: settings, URLs, and its WSGI application."""
{% include "backends/" ~ cookiecutter.task_backend ~ "/config/__init__.py" ignore missing %}