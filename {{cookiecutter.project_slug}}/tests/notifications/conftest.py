import pytest

from notifications import services

RECIPIENTS = ["pi@example.org", "postdoc@example.org", "student@example.org"]


@pytest.fixture
def notification(owner):
    """A notification to RECIPIENTS, created as the view creates it."""
    return services.create_notification(
        owner=owner,
        subject="Observations taken",
        message="Tonight's run is on the archive.",
        recipients=RECIPIENTS,
    )
