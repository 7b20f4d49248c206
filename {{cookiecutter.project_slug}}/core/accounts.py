"""Django's login and password-reset views, throttled; reset mail queued.

Django's views let anyone try passwords without limit, and send the reset
mail inside the request: a slow mail server slows the page, and a burst of
requests is a burst of mail to one inbox. Here each attempt is counted
(core/throttle.py) and the mail is a task for the worker.
"""

from django.contrib.auth import forms, views
from django.http import HttpResponseRedirect
from django.template import loader

from notifications import tasks

from . import throttle


class ThrottledMixin:
    """Count each POST against the limits of ``action``; answer 429 past one."""

    action = None

    def counted(self, request):
        """The (THROTTLES key, subject) pairs a POST counts against, in order.

        The client's address comes first, and counting stops at the first
        limit passed: a client over its own limit counts against no account,
        so one address cannot lock many accounts out.
        """
        return [(f"{self.action}/address", throttle.client_address(request))]

    def post(self, request, *args, **kwargs):
        try:
            for name, subject in self.counted(request):
                throttle.count(name, subject)
        except throttle.Throttled as exc:
            return self.throttled(exc)
        return super().post(request, *args, **kwargs)

    def throttled(self, exc):
        """The page again with the reason: 429 and Retry-After.

        The form is not bound to the data: checking it would run what the
        limit is there to stop (a password check, a mail).
        """
        kwargs = self.get_form_kwargs()
        kwargs.pop("data", None)
        kwargs.pop("files", None)
        context = self.get_context_data(
            form=self.get_form_class()(**kwargs), throttled=str(exc)
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response


class LoginView(ThrottledMixin, views.LoginView):
    action = "login"

    def counted(self, request):
        username = request.POST.get("username", "").strip().lower()
        return [*super().counted(request), ("login/account", username[:150])]


class QueuedPasswordResetForm(forms.PasswordResetForm):
    """Write the reset mail in the request; the worker sends it."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        subject = loader.render_to_string(subject_template_name, context)
        html = None
        if html_email_template_name is not None:
            html = loader.render_to_string(html_email_template_name, context)
        tasks.enqueue_email(
            subject="".join(subject.splitlines()),
            body=loader.render_to_string(email_template_name, context),
            to=[to_email],
            html=html,
        )


class PasswordResetView(ThrottledMixin, views.PasswordResetView):
    action = "password_reset"
    form_class = QueuedPasswordResetForm

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        try:
            throttle.count("password_reset/account", email)
        except throttle.Throttled:
            # The same page as when a mail is sent: nothing said of accounts.
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
