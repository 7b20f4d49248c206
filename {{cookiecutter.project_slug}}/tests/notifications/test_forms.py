import pytest

from notifications.forms import NotificationForm


def form(**fields):
    data = {"subject": "Observations taken", "message": "On the archive."}
    return NotificationForm(data={**data, **fields})


def test_recipients_split_on_commas_and_new_lines_and_drop_duplicates():
    f = form(recipients="a@example.org, b@example.org\nA@EXAMPLE.ORG\n\n,c@example.org")
    assert f.is_valid(), f.errors
    assert f.cleaned_data["recipients"] == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]


# What str.splitlines() splits on, and a bell for the other control characters.
@pytest.mark.parametrize("breaker", list("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\x07"))
def test_subject_with_any_line_break_or_control_character_is_refused(breaker):
    subject = f"Two{breaker}lines"
    f = form(subject=subject, recipients="a@example.org")
    assert not f.is_valid()
    assert f.errors["subject"] == ["The subject must be a single line."]


def test_invalid_address_is_named_in_the_error():
    f = form(recipients="a@example.org, not-an-address")
    assert not f.is_valid()
    assert f.errors["recipients"] == ["'not-an-address' is not an email address."]


def test_only_separators_is_no_recipient():
    f = form(recipients=" , \n ,")
    assert not f.is_valid()
    assert f.errors["recipients"] == ["Give at least one recipient."]


def test_too_many_recipients_are_refused(settings):
    settings.NOTIFICATION_MAX_RECIPIENTS = 2
    f = form(recipients="a@example.org,b@example.org,c@example.org")
    assert not f.is_valid()
    assert f.errors["recipients"] == ["Give at most 2 recipients."]


def test_subject_with_a_tab_and_accents_is_fine():
    assert form(subject="Résumé\tdes nuits", recipients="a@example.org").is_valid()
