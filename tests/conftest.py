import os

import pytest

from annotator.models import CampaignRole
from tests.factories import (
    CampaignFactory,
    ComparisonFactory,
    LabelerFactory,
    MembershipFactory,
    StaffFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (failed sign-in counts live there)."""
    from django.core.cache import cache

    cache.clear()


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
def campaign(db, labeler, other_labeler):
    """A pairwise campaign with five comparisons, overlap 1, $0.10 a judgement, no cap, whose labelers (members in
    the role labeler) are `labeler` and `other_labeler`. Any other labeler is a member only where a
    MembershipFactory makes them one."""
    campaign = CampaignFactory(labelers=[labeler, other_labeler])
    ComparisonFactory.create_batch(5, campaign=campaign)
    return campaign


@pytest.fixture
def manager(campaign):
    """A user who manages `campaign` (its budget, rounds and evaluation pages) and nothing else: not staff, not a
    labeler."""
    user = UserFactory(username="manager")
    MembershipFactory(campaign=campaign, user=user, role=CampaignRole.MANAGER)
    return user


@pytest.fixture(scope="session")
def word_policy_dir(tmp_path_factory):
    """A ~0.2 M-parameter GPT-2 with a 2,000-token BPE (whole words: what VADER scores), trained for seconds on a
    slice of Shakespeare by models_rl's own entry point; for the tests where a gold labeler must see words."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from models_rl.base_model import BaseModelConfig, ensure_base_model

    config = BaseModelConfig(
        output_dir=str(tmp_path_factory.mktemp("word_policy")), vocab_size=2000, n_layer=2, n_head=2, n_embd=64,
        block_size=64, batch_size=16, max_steps=200, learning_rate=3e-3, time_budget_s=30, max_chars=300_000,
    )
    return ensure_base_model(config, progress=lambda report: None)
