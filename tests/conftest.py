import pytest

from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory, StaffFactory


@pytest.fixture
def labeler(db):
    return LabelerFactory()


@pytest.fixture
def other_labeler(db):
    return LabelerFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def campaign(db):
    """A pairwise campaign with five comparisons, overlap 1, $0.10 a judgement, no cap."""
    campaign = CampaignFactory()
    ComparisonFactory.create_batch(5, campaign=campaign)
    return campaign
