"""A campaign's prompts: where they come from is always a choice someone made, never a silent default."""

from django.db import transaction

from annotator.core.errors import InvalidInput
from annotator.models import Campaign, Prompt, PromptSplit

PLAYS_SOURCE = "shakespeare"


@transaction.atomic
def campaign_prompts_from_plays(*, campaign: Campaign, train: int, heldout: int, seed: int = 0) -> int:
    """Add `train + heldout` openings of lines cut from the Shakespeare texts (the first `heldout` of the seeded
    draw held out, never trained on); refused when the campaign already has prompts, so a rerun adds nothing
    twice. Returns how many were added."""
    if train < 1 or heldout < 0:
        raise InvalidInput("Ask for at least 1 train prompt and 0 or more held-out ones.")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    existing = Prompt.objects.filter(campaign=campaign).count()
    if existing:
        raise InvalidInput(f"{campaign.name!r} already has {existing} prompts; the plays' are added only to a "
                           "campaign without any.")
    from models_rl.data import shakespeare_prompts  # plain data; the ML stack loads only when needed

    texts = shakespeare_prompts(train + heldout, seed=seed)
    Prompt.objects.bulk_create(
        Prompt(campaign=campaign, text=text, source=PLAYS_SOURCE,
               split=PromptSplit.HELDOUT if index < heldout else PromptSplit.TRAIN)
        for index, text in enumerate(texts)
    )
    return len(texts)
