{% include "backends/" ~ cookiecutter.task_backend ~ "/photos_tasks.py" %}
