{% include "backends/" ~ cookiecutter.task_backend ~ "/notifications_tasks.py" %}
