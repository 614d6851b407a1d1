"""Add prompts to a campaign: `--file` reads a .jsonl (a `prompt` field or TRL's `messages`), .csv (a `prompt` or
`--column` column) or .txt file (one a line), skips blank, over-long and duplicate prompts with the reason and holds
out `--heldout-fraction` of the rest by a seeded shuffle; `--plays` adds openings of lines cut from Shakespeare's
plays, the train and held-out counts and the seed taken from the campaign's round settings unless given."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.core.errors import ServiceError
from annotator.models import Campaign, Prompt, PromptSplit
from annotator.rounds.settings import round_settings
from annotator.services.prompts import MAX_PROMPT_FILE_BYTES, campaign_prompts_from_file, campaign_prompts_from_plays

SKIPS_SHOWN = 20


class Command(BaseCommand):
    help = "Add prompts to a campaign from a file (--file) or from Shakespeare's plays (--plays)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="the campaign's name")
        parser.add_argument("--file", help="a .jsonl, .csv or .txt file of prompts")
        parser.add_argument("--column", help="the CSV column, or JSONL field, holding the prompt (default: prompt)")
        parser.add_argument("--heldout-fraction", type=float, default=0.1,
                            help="share of a file's prompts held out, never trained on (default 0.1)")
        parser.add_argument("--plays", action="store_true", help="openings of lines from Shakespeare's plays")
        parser.add_argument("--train", type=int, help="train prompts (default: the campaign's train_prompts)")
        parser.add_argument("--heldout", type=int, help="held-out prompts (default: the campaign's heldout_prompts)")
        parser.add_argument("--seed", type=int, help="seed of the draw (default: the campaign's seed)")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {options['campaign']!r}.")
        if bool(options["plays"]) == bool(options["file"]):
            raise CommandError("Say where the prompts come from: --file PATH or --plays (one of them).")
        if options["file"]:
            seed = round_settings(campaign=campaign).seed if options["seed"] is None else options["seed"]
            self._from_file(campaign, Path(options["file"]), options, seed=seed)
            return
        try:
            added = campaign_prompts_from_plays(campaign=campaign, train=options["train"], heldout=options["heldout"],
                                                seed=options["seed"])
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        prompts = Prompt.objects.filter(campaign=campaign)
        self.stdout.write(f"Added {added} prompts from the plays to {campaign.name!r}: "
                          f"{prompts.filter(split=PromptSplit.TRAIN).count()} train, "
                          f"{prompts.filter(split=PromptSplit.HELDOUT).count()} held out.")

    def _from_file(self, campaign: Campaign, path: Path, options: dict, *, seed: int) -> None:
        if not path.is_file():
            raise CommandError(f"No file {str(path)!r}.")
        if path.stat().st_size > MAX_PROMPT_FILE_BYTES:  # refused before reading it into memory
            raise CommandError(f"{path.name!r} is over {MAX_PROMPT_FILE_BYTES // 2**20} MB.")
        try:
            result = campaign_prompts_from_file(campaign=campaign, data=path.read_bytes(), name=path.name,
                                                column=options["column"], heldout_fraction=options["heldout_fraction"],
                                                seed=seed)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Added {result.train + result.heldout} prompts from {path.name} to {campaign.name!r}: "
                          f"{result.train} train, {result.heldout} held out (seed {seed}); {len(result.skipped)} "
                          "lines skipped.")
        for number, why in result.skipped[:SKIPS_SHOWN]:
            self.stdout.write(f"  line {number}: {why}")
        if len(result.skipped) > SKIPS_SHOWN:
            self.stdout.write(f"  ... and {len(result.skipped) - SKIPS_SHOWN} more")
