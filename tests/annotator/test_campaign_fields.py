"""A campaign's choices are checked when it is saved through a form, not first when a round runs."""

import pytest
from django.core.exceptions import ValidationError

from annotator.models import AcquisitionStrategy, Campaign
from models_rl.acquisition import STRATEGIES
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_the_campaign_offers_exactly_the_strategies_models_rl_has():
    assert set(AcquisitionStrategy.values) == set(STRATEGIES)
    assert Campaign._meta.get_field("acquisition_strategy").get_default() == "uncertainty"


def test_an_unknown_acquisition_strategy_is_refused_on_validation():
    campaign = CampaignFactory.build(acquisition_strategy="entropy")
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert "acquisition_strategy" in refused.value.message_dict
    assert "'entropy' is not a valid choice" in refused.value.message_dict["acquisition_strategy"][0]
    campaign.acquisition_strategy = AcquisitionStrategy.THOMPSON
    campaign.full_clean()
