"""Unconditional campaigns (`Campaign.unconditional`): no prompts, the policy samples from its start token.

The round loop still works prompt by prompt (a round draws prompts, samples completions of each, pairs completions
of one prompt, holds some prompts out to measure its policies), so such a campaign gets prompt "slots": Prompt
rows with empty text, `train_prompts` of them to train on and `heldout_prompts` held out (its round settings). An
empty prompt is what models_rl samples from the start token, and what the labeling page shows no prompt box for.
"""

from django.db import transaction

from annotator.core.errors import InvalidInput
from annotator.models import Campaign, Prompt, PromptSplit
from annotator.rounds.settings import round_settings

UNCONDITIONAL_SOURCE = "unconditional"


@transaction.atomic
def unconditional_prompts_ensure(*, campaign: Campaign) -> int:
    """Give an unconditional campaign its empty prompt slots, up to its round settings' `train_prompts` and
    `heldout_prompts`; returns how many were added (0 once they are there, so a rerun adds nothing).

    Refused when the campaign has prompts with text: its completions would follow them, which is not what an
    unconditional campaign promises. Holds the campaign row lock (as `round_start` does), so two starts cannot
    both add the slots.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    with_text = Prompt.objects.filter(campaign=campaign).exclude(text="").count()
    if with_text:
        raise InvalidInput(
            f"{campaign.name!r} is unconditional (its policy samples from its start token, with no prompt), but it "
            f"has {with_text} prompts with text. Make it a campaign with prompts, or use another campaign for them."
        )
    sizes = round_settings(campaign=campaign)
    wanted = {PromptSplit.TRAIN: sizes.train_prompts, PromptSplit.HELDOUT: sizes.heldout_prompts}
    slots = []
    for split, count in wanted.items():
        existing = Prompt.objects.filter(campaign=campaign, split=split).count()
        slots += [Prompt(campaign=campaign, text="", source=UNCONDITIONAL_SOURCE, split=split)
                  for _ in range(max(count - existing, 0))]
    Prompt.objects.bulk_create(slots)
    return len(slots)
