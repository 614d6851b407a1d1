"""Add prompts to a campaign: `--plays` adds openings of lines cut from Shakespeare's plays, the train and
held-out counts and the seed taken from the campaign's round settings unless given."""

from django.core.management.base import BaseCommand, CommandError

from annotator.core.errors import ServiceError
from annotator.models import Campaign, Prompt, PromptSplit
from annotator.rounds.settings import round_settings
from annotator.services.prompts import campaign_prompts_from_plays


class Command(BaseCommand):
    help = "Add prompts to a campaign (--plays: openings of lines from Shakespeare's plays)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="the campaign's name")
        parser.add_argument("--plays", action="store_true", help="openings of lines from Shakespeare's plays")
        parser.add_argument("--train", type=int, help="train prompts (default: the campaign's train_prompts)")
        parser.add_argument("--heldout", type=int, help="held-out prompts (default: the campaign's heldout_prompts)")
        parser.add_argument("--seed", type=int, help="seed of the draw (default: the campaign's seed)")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {options['campaign']!r}.")
        if not options["plays"]:
            raise CommandError("Say where the prompts come from: --plays.")
        sizes = round_settings(campaign=campaign)
        train = sizes.train_prompts if options["train"] is None else options["train"]
        heldout = sizes.heldout_prompts if options["heldout"] is None else options["heldout"]
        seed = sizes.seed if options["seed"] is None else options["seed"]
        try:
            added = campaign_prompts_from_plays(campaign=campaign, train=train, heldout=heldout, seed=seed)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        prompts = Prompt.objects.filter(campaign=campaign)
        self.stdout.write(f"Added {added} prompts from the plays to {campaign.name!r}: "
                          f"{prompts.filter(split=PromptSplit.TRAIN).count()} train, "
                          f"{prompts.filter(split=PromptSplit.HELDOUT).count()} held out.")
