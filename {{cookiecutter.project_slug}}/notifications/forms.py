"""Input checks done in the request, so the worker never sees bad data."""

import unicodedata

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


def no_line_breaks(value):
    """One line, no control characters: what an email header can carry.

    A line break in a header is refused by the mail library in the worker
    (header injection); so are its cousins (VT, FF, FS, NEL, U+2028, ...).
    Refuse them all here, where the user can fix them; a tab is harmless.
    """
    if any(
        unicodedata.category(char) in {"Cc", "Zl", "Zp"} and char != "\t"
        for char in value
    ):
        raise ValidationError("The subject must be a single line.")


class NotificationForm(forms.Form):
    subject = forms.CharField(max_length=200, validators=[no_line_breaks])
    message = forms.CharField(widget=forms.Textarea)
    recipients = forms.CharField(
        widget=forms.Textarea,
        help_text="Email addresses, separated by commas or new lines.",
    )

    def clean_recipients(self):
        """A list of unique, valid addresses (case-insensitive), in input order."""
        raw = self.cleaned_data["recipients"].replace(",", "\n").splitlines()
        unique = {}
        for address in filter(None, (line.strip() for line in raw)):
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"{address!r} is not an email address.") from None
            unique.setdefault(address.lower(), address)
        if not unique:
            raise ValidationError("Give at least one recipient.")
        limit = settings.NOTIFICATION_MAX_RECIPIENTS
        if len(unique) > limit:
            raise ValidationError(f"Give at most {limit} recipients.")
        return list(unique.values())
