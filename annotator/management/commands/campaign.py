"""Set up a campaign from a YAML file, the command-line face of annotator.services.campaign_setup:

    manage.py campaign create --file campaign.yaml [--name NEW-NAME]
    manage.py campaign show NAME > campaign.yaml
    manage.py campaign update NAME --file changes.yaml

`show` prints the campaign's whole specification, which `create` takes back (with another name) and `update` takes
whole or in part (the fields given change, the rest stay). `--file -` reads standard input. A refused file changes
nothing and every wrong field is named. docs/campaigns.md describes the fields.
"""

import sys
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from annotator.core.errors import ServiceError
from annotator.models import Campaign
from annotator.rounds.estimate import round_estimate_of_spec
from annotator.services.campaign_setup import (
    SPEC_SECTIONS,
    campaign_create,
    campaign_spec,
    campaign_update,
    estimate_text,
)

MAX_SPEC_BYTES = 1024 * 1024


class _SpecDumper(yaml.SafeDumper):
    """Multi-line text (the instructions) as a literal block, so the Markdown reads as written."""


def _text(dumper: yaml.SafeDumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_SpecDumper.add_representer(str, _text)


def spec_yaml(spec: dict) -> str:
    """The spec as YAML, its fields grouped under comments as the set-up page groups them."""
    parts = []
    for title, names in SPEC_SECTIONS:
        parts.append(f"# {title}\n" + yaml.dump({name: spec[name] for name in names}, Dumper=_SpecDumper,
                                                 sort_keys=False, allow_unicode=True, width=120))
    return "\n".join(parts)


class Command(BaseCommand):
    help = "Create, show or update a campaign from its YAML specification (docs/campaigns.md)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,show,update}")
        create = actions.add_parser("create", help="create a campaign from a YAML file")
        create.add_argument("--file", required=True, help="the YAML specification; - reads standard input")
        create.add_argument("--name", help="the new campaign's name, instead of the file's")
        show = actions.add_parser("show", help="print a campaign's specification as YAML")
        show.add_argument("name", help="the campaign's name")
        update = actions.add_parser("update", help="change a campaign to the fields a YAML file gives")
        update.add_argument("name", help="the campaign's name")
        update.add_argument("--file", required=True, help="the fields to change, as YAML; - reads standard input")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "show":
            self.stdout.write(spec_yaml(campaign_spec(campaign=self._campaign(options["name"]))), ending="")
            return
        data = self._read(options["file"])
        try:
            if action == "create":
                if options["name"]:
                    data = {**data, "name": options["name"]} if isinstance(data, dict) else data
                campaign = campaign_create(data=data, created_by=None)
            else:
                campaign = campaign_update(campaign=self._campaign(options["name"]), data=data, changed_by=None)
        except ServiceError as error:
            raise CommandError(self._refusal(error, created=action == "create")) from None
        verb = "Created" if action == "create" else "Updated"
        estimate = round_estimate_of_spec(campaign=campaign)
        self.stdout.write(self.style.SUCCESS(f"{verb} campaign {campaign.name!r}."))
        self.stdout.write(f"  one round: {estimate_text(estimate, campaign.currency)}")

    @staticmethod
    def _campaign(name: str) -> Campaign:
        campaign = Campaign.objects.filter(name=name).first()
        if campaign is None:
            raise CommandError(f"No campaign {name!r}.")
        return campaign

    @staticmethod
    def _read(file: str):
        """The YAML document in `file` (or standard input), or CommandError saying why not."""
        if file == "-":
            text = sys.stdin.read(MAX_SPEC_BYTES + 1)
        else:
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"No file {file!r}.")
            if path.stat().st_size > MAX_SPEC_BYTES:
                raise CommandError(f"{file!r} is over {MAX_SPEC_BYTES // 1024} KB; a campaign's specification is "
                                   "much smaller.")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise CommandError(f"{file!r} is not UTF-8 text (byte {error.start}).") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CommandError(f"{file!r} is not valid YAML: {error}") from None

    @staticmethod
    def _refusal(error: ServiceError, *, created: bool) -> str:
        outcome = "nothing was created" if created else "nothing was changed"
        fields = error.details.get("fields")
        if not fields:
            return f"Refused ({outcome}): {error.message}"
        lines = [f"  {name}: {' '.join(messages)}" if name != "non_field_errors" else f"  {' '.join(messages)}"
                 for name, messages in fields.items()]
        return f"Refused ({outcome}); the specification has {len(fields)} problem(s):\n" + "\n".join(lines)
