"""Answers for API clients: JSON for every error, 401 instead of a login page.

Browsers keep Django's pages and the redirect to the login form; a client
that prefers JSON (``Accept: application/json``, or ``*/*`` as curl sends)
gets ``{"error": "<sentence>"}`` with the same status, whichever part of
Django produced the error (404, 405, the CSRF check's 403, a 500, ...).
"""

from http import HTTPStatus

from django.conf import settings
from django.contrib.auth import middleware as auth
from django.http import HttpResponse, JsonResponse

from .views import wants_html

SENTENCES = {
    400: "The request is not valid.",
    401: "Log in first.",
    403: "This request is not allowed (a missing or wrong CSRF token?).",
    404: "There is nothing here, or it is not yours.",
    405: "This URL does not take that method.",
    413: "The request is too large.",
    429: "Too many requests; try again later.",
    500: "Something went wrong on our side; it has been logged.",
}


class LoginRequiredMiddleware(auth.LoginRequiredMiddleware):
    """Django's, but an API client is told 401 rather than sent to a form."""

    def handle_no_permission(self, request, view_func):
        if wants_html(request):
            return super().handle_no_permission(request, view_func)
        return JsonResponse({"error": SENTENCES[401]}, status=401)


class JsonErrorsMiddleware:
    """Turn any non-JSON error response into JSON when the client wants it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not wants_html(request)
        ):
            status = response.status_code
            sentence = SENTENCES.get(status) or f"{HTTPStatus(status).phrase}."
            json = JsonResponse({"error": sentence}, status=status)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    json[header] = response[header]
            return json
        return response


class RequestSizeLimitMiddleware:
    """Refuse a body over REQUEST_MAX_BYTES (413) before reading any of it.

    Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE) leaves file uploads out,
    and the photo form sees the file's size only once the whole body has
    been received and spooled to disk: a client could make every upload
    cost the server 1 GiB of reading and disk first. The declared length is
    known before the body is read, and Django never reads past it (a body
    without a length, such as a chunked one, is read as empty).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.REQUEST_MAX_BYTES
        if length > limit:
            return HttpResponse(
                f"The request is too large: the limit is {limit / 2**20:.1f} MB.",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
