"""The admin without django-dramatiq's page of task records.

django-dramatiq registers a page for the messages its AdminMiddleware
records, and shows their arguments as HTML (``mark_safe``): an argument
holding markup would run as script in a staff member's browser. The project
records none (no AdminMiddleware in DRAMATIQ_BROKER), so the page goes: the
job rows (photos, notifications) are where a task's status is.
"""

from django.contrib import admin
from django_dramatiq import admin as dramatiq_admin

admin.site.unregister(dramatiq_admin.Task)
