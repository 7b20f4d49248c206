"""The health check the load balancer and Kubernetes probe: ``GET /healthz/``.

200 ``{"status": "ok"}`` when a query reaches the database, else 503
``{"status": "unavailable"}``, never the reason (it is logged). No login,
and plain HTTP is answered (SECURE_REDIRECT_EXEMPT): the kubelet probes
the pod directly, not through the TLS proxy.
"""

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@login_not_required
@never_cache
@require_safe
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("Health check: the database does not answer", exc_info=True)
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
