"""RL rounds share the campaign's KL budget: each may move the policy `kl_per_round` nats beyond where it starts."""

import pytest

from annotator.models import PolicyCheckpoint, PromptSplit, RewardModel, Round, RoundState
from annotator.core.errors import InvalidInput
from annotator.rounds.step_policy import optimizing_inputs, round_kl_limit
from tests.factories import CampaignFactory, PromptFactory

pytestmark = pytest.mark.django_db


def round_starting_at(kl_from_base: float | None, **settings) -> Round:
    """Round 2 of a campaign whose round 1 ended at `kl_from_base` (None: round 1 has no final policy yet)."""
    campaign = CampaignFactory(settings=settings)
    PromptFactory(campaign=campaign, split=PromptSplit.TRAIN)
    round_0 = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    PolicyCheckpoint.objects.create(campaign=campaign, round=round_0, label="base", path="/m/base", kl_from_base=0.0)
    round_1 = Round.objects.create(campaign=campaign, number=1, state=RoundState.DONE)
    if kl_from_base is not None:
        PolicyCheckpoint.objects.create(campaign=campaign, round=round_1, label="final", path="/m/r1",
                                        kl_from_base=kl_from_base)
    round_2 = Round.objects.create(campaign=campaign, number=2, state=RoundState.OPTIMIZING)
    RewardModel.objects.create(campaign=campaign, round=round_2, path="/m/rm2")
    return round_2


def test_a_round_may_go_kl_per_round_beyond_its_start():
    inputs = optimizing_inputs(round_=round_starting_at(3.5))
    assert (inputs.policy_path, inputs.start_kl, inputs.kl_per_round) == ("/m/r1", 3.5, 4.0)
    assert round_kl_limit(inputs=inputs, policy_kl_limit=10.0) == 7.5
    assert round_kl_limit(inputs=inputs, policy_kl_limit=6.0) == 6.0  # never past the policy's own limit


def test_the_allowance_is_a_campaign_setting_and_round_one_starts_at_the_base():
    inputs = optimizing_inputs(round_=round_starting_at(None, kl_per_round=2.5))
    assert (inputs.policy_path, inputs.start_kl) == ("/m/base", 0.0)
    assert round_kl_limit(inputs=inputs, policy_kl_limit=10.0) == 2.5


def test_a_round_that_starts_at_the_limit_is_refused_with_what_to_do():
    inputs = optimizing_inputs(round_=round_starting_at(10.2))
    with pytest.raises(InvalidInput, match="no room left.*kl_limit"):
        round_kl_limit(inputs=inputs, policy_kl_limit=10.0)
