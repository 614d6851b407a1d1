"""A campaign's set-up: one specification, one validator, three faces.

The specification (`SPEC_FIELDS`) is a flat mapping: the Campaign fields a team chooses, the round sizes of
`annotator.rounds.settings.RoundSettings` (stored in `Campaign.settings` as before), and the optional overrides of
the models_rl configs (`base_model`, `reward_model`, `policy`, `sampling`: mappings, also in `Campaign.settings`).
`CampaignSetupForm` is its only validator; the staff pages, `manage.py campaign` and the REST API all call
`campaign_create`, `campaign_update` and `campaign_spec` here, so the three give the same campaign and the same
messages. `campaign_spec` writes what `campaign_create` reads back.

Rules kept here: the name never changes once made (a campaign's files live under it); the currency does not change
once money was recorded; a base model or gold labeler named is loaded (config and tokenizer) before it is saved
(annotator.rounds.model_check); a money budget must cover one round's estimated cost (annotator.rounds.estimate).
Validation, which may load a tokenizer, runs before any transaction opens; the write then takes the campaign's
row lock and merges the round keys into the settings as they are then, leaving keys it does not own untouched.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

import nh3
from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import RegexValidator
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.forms.models import construct_instance
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotator.core.errors import AccessDenied, InvalidInput
from annotator.models import Campaign, LedgerEntry, Prompt, PromptSplit
from annotator.rounds.estimate import RoundEstimate, round_estimate_of_spec
from annotator.rounds.model_check import base_model_check, gold_labeler_check, ml_section_check
from annotator.rounds.settings import ML_SECTIONS, RoundSettings, campaign_task_kind_check, round_settings
from annotator.services.access import campaigns_managed
from annotator.services.prompts import (
    PromptImport,
    campaign_prompts_from_dataset_dir,
    campaign_prompts_from_file,
    campaign_prompts_from_plays,
    prompt_file_size_check,
)

# -- the specification ----------------------------------------------------------------------------------------

CAMPAIGN_FIELDS = (
    "name", "title", "instructions", "task_kind", "unconditional", "is_active", "overlap", "lease_seconds",
)
MONEY_FIELDS = (
    "currency", "pay_model", "pay_per_judgement", "hourly_rate", "max_paid_seconds_per_item", "platform_fee_percent",
    "money_budget", "gpu_hour_budget", "default_gpu_hour_price",
)
MODEL_FIELDS = ("base_model_path", "policy_optimizer", "acquisition_strategy", "gold_labeler")
SPEC_MODEL_FIELDS = CAMPAIGN_FIELDS + MONEY_FIELDS + MODEL_FIELDS  # Campaign's own columns
ROUND_FIELDS = tuple(field.name for field in fields(RoundSettings))  # keys of Campaign.settings
SPEC_FIELDS = SPEC_MODEL_FIELDS + ROUND_FIELDS + ML_SECTIONS
# How the pages group the fields (the YAML and the API take them flat).
SPEC_SECTIONS = (
    ("Campaign", CAMPAIGN_FIELDS),
    ("Pay and budgets", MONEY_FIELDS),
    ("Models", MODEL_FIELDS),
    ("Round sizes", ROUND_FIELDS),
    ("Training settings (advanced)", ML_SECTIONS),
)
# What one round's cost depends on: with any of these invalid there is no estimate.
COST_FIELDS = (
    "overlap", "pay_model", "pay_per_judgement", "hourly_rate", "max_paid_seconds_per_item", "platform_fee_percent",
    "default_gpu_hour_price", "money_budget", "gpu_hour_budget", "pairs_per_round",
)

ROUND_HELP = {
    "train_prompts": "Train prompts the Shakespeare plays button adds (ignored for prompts from a file).",
    "heldout_prompts": "Held-out prompts the plays button adds: never trained on, used to evaluate.",
    "prompts_per_round": "Train prompts each round samples completions for.",
    "completions_per_prompt": "Completions the round's new policy writes for each prompt.",
    "contrast_per_prompt": "Completions from the policy before it, for contrast (rounds after the first).",
    "pairs_per_round": "Pairs published for labeling each round: with the overlap and the pay, the round's cost.",
    "gold_share": "Share of each round's pairs whose answer the gold labeler knows (honeypots), 0 to 1.",
    "random_share": "Share of the acquired pairs chosen at random, as a control, 0 to 1.",
    "max_pairs_per_prompt": "Pairs made from one prompt's completions at most.",
    "eval_samples_per_prompt": "Samples per checkpoint and held-out prompt that measure the gold reward.",
    "reward_ensemble_size": "Reward models trained each round; their disagreement is what acquisition measures.",
    "kl_per_round": "RL: how many more nats of KL from the base each round may spend.",
    "seed": "Seeds every draw of the campaign's rounds and the plays' prompts.",
}
ROUND_MINIMUM = {"prompts_per_round": 1, "completions_per_prompt": 1, "pairs_per_round": 1, "reward_ensemble_size": 1}
ROUND_FRACTIONS = ("gold_share", "random_share")
SECTION_HELP = {
    "base_model": "Overrides of models_rl.base_model.BaseModelConfig for the embedded model (architecture, steps).",
    "reward_model": "Overrides of models_rl.reward_model.RewardModelConfig (epochs, learning_rate, max_length, ...).",
    "policy": "Overrides of the optimiser's config (models_rl.rloo.RLConfig, dpo.DPOConfig, best_of_n.BestOfNConfig).",
    "sampling": "Overrides of models_rl.sampling.SamplingConfig (max_new_tokens, temperature, top_p, batch_size).",
}
HELP = {
    "name": "A slug (letters, digits, - and _): the campaign's URLs and artifact folder. It cannot change later.",
    "title": "What labelers see as the campaign's name.",
    "instructions": "Markdown, shown to labelers before they start and beside every item. Raw HTML is sanitised.",
    "task_kind": "Pairwise: labelers compare two completions of a prompt. Rating: they rate one.",
    "policy_optimizer": "How each round improves the policy against the reward model: online RL with a KL penalty, "
                        "DPO on the collected pairs, or best-of-n.",
    "pay_model": "Per judgement, or hourly for the time on the page (capped per item).",
    "unconditional": "No prompts: the policy samples from its start token, and labelers see no prompt.",
    "is_active": "Labelers see and label only active campaigns.",
    "overlap": "Judgements wanted per item.",
    "lease_seconds": "How long a labeler holds an item before it goes back to the pool.",
    "currency": "ISO 4217 code, e.g. USD or EUR. It cannot change once money was recorded.",
    "pay_per_judgement": "Per-judgement pay for each answer.",
    "hourly_rate": "Hourly pay: time on the page, up to the seconds below per item.",
    "platform_fee_percent": "A crowd platform's fee, added on top of people's pay.",
    "money_budget": "Hard cap on all money spent and reserved; empty means no cap. It must cover one round.",
    "gpu_hour_budget": "Hard cap on GPU hours; empty means no cap.",
    "default_gpu_hour_price": "Price of one GPU-hour (device types without a price of their own).",
    "base_model_path": "A Hugging Face causal-LM directory the workers can read (config, weights and tokenizer); "
                       "empty for the embedded Shakespeare model. Loaded to check it when saved.",
    "gold_labeler": "Who answers the gold (honeypot) pairs: empty for none, 'vader' (positive sentiment only), or "
                    "the directory of a reward model (one member_<k> folder of a trained ensemble).",
}


def _decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain text without trailing zeros ("0.1", "120"): what the spec writes for money."""
    return None if value is None else format(value.normalize(), "f")


def campaign_spec(*, campaign: Campaign) -> dict:
    """The campaign's specification, as `campaign_create` and `campaign_update` take it: money as text, round
    sizes from its settings over the defaults (as stored, so a value the validator refuses shows as it is), and
    each models_rl section as a mapping ({} for none). `campaign_spec(campaign=Campaign())` gives the defaults."""
    spec: dict = {}
    for name in SPEC_MODEL_FIELDS:
        value = getattr(campaign, name)
        if isinstance(value, Decimal):
            value = _decimal_text(value)
        elif isinstance(value, str):
            value = str(value)  # a default's TextChoices member as its plain value
        spec[name] = value
    stored = campaign.settings if isinstance(campaign.settings, dict) else {}
    defaults = RoundSettings()
    for name in ROUND_FIELDS:
        spec[name] = stored.get(name, getattr(defaults, name))
    for section in ML_SECTIONS:
        value = stored.get(section)
        spec[section] = dict(value) if isinstance(value, dict) else ({} if value is None else value)
    return spec


def spec_settings(*, settings: dict | None, cleaned: dict, names=SPEC_FIELDS) -> dict:
    """`Campaign.settings` with the spec's round sizes and models_rl sections from `cleaned`, those of them in
    `names` (a section left empty is removed); keys other parts of the platform keep there stay as they are."""
    merged = dict(settings) if isinstance(settings, dict) else {}
    for name in ROUND_FIELDS:
        if name in names:
            merged[name] = cleaned[name]
    for section in ML_SECTIONS:
        if section not in names:
            continue
        if cleaned.get(section):
            merged[section] = cleaned[section]
        else:
            merged.pop(section, None)
    return merged


# -- the validator ------------------------------------------------------------------------------------------------


def _round_field(name: str) -> forms.Field:
    default = getattr(RoundSettings(), name)
    help_text = ROUND_HELP.get(name, "")
    if isinstance(default, float):
        maximum = 1 if name in ROUND_FRACTIONS else None
        return forms.FloatField(min_value=0, max_value=maximum, help_text=help_text)
    return forms.IntegerField(min_value=ROUND_MINIMUM.get(name, 0), help_text=help_text)


class CampaignSetupForm(forms.ModelForm):
    """The one validator of a campaign's specification. Bind it to a complete spec (`campaign_spec` of the
    campaign, or of `Campaign()` for a new one, updated with what was given). `check_models=False` skips loading
    the base model, gold labeler and models_rl configs (the live cost preview). After `is_valid()`, `estimate`
    holds one round's estimated cost when the fields it depends on are valid."""

    currency = forms.CharField(
        max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as USD.")]
    )

    class Meta:
        model = Campaign
        fields = SPEC_MODEL_FIELDS
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, check_models: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_models = check_models
        self.estimate: RoundEstimate | None = None
        self.given: frozenset[str] = frozenset(SPEC_FIELDS)  # the fields a caller named (set by _bound_form)
        for name in ROUND_FIELDS:
            self.fields[name] = _round_field(name)
        for section in ML_SECTIONS:
            self.fields[section] = forms.JSONField(
                required=False, help_text=SECTION_HELP[section] + " A JSON object; empty for none.",
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        for name, text in HELP.items():
            self.fields[name].help_text = text
        if self.instance.pk is not None:
            self.fields["name"].widget.attrs["readonly"] = True

    def _changed(self, name: str, value) -> bool:
        return self.instance.pk is None or getattr(self.instance, name) != value

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if self.instance.pk is not None and name != self.instance.name:
            raise forms.ValidationError(
                f"A campaign's name cannot change (its files live under it): this is {self.instance.name!r}."
            )
        if self.instance.pk is None and name.isdigit():
            raise forms.ValidationError("A name of digits only would read as a campaign's id in URLs: add a letter.")
        return name

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"]
        if (self.instance.pk is not None and currency != self.instance.currency
                and LedgerEntry.objects.filter(campaign_id=self.instance.pk).exists()):
            raise forms.ValidationError(
                f"The currency cannot change once money was recorded in {self.instance.currency}."
            )
        return currency

    def clean_base_model_path(self) -> str:
        path = self.cleaned_data["base_model_path"].strip()
        if self.check_models and self._changed("base_model_path", path):
            _as_field_error(base_model_check, path)
        return path

    def clean_gold_labeler(self) -> str:
        value = self.cleaned_data["gold_labeler"].strip()
        if self.check_models and self._changed("gold_labeler", value):
            _as_field_error(gold_labeler_check, value)
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        for section in ML_SECTIONS:
            value = cleaned.get(section) or {}
            cleaned[section] = value
            if not isinstance(value, dict):
                self.add_error(section, "Give a mapping (a JSON object) of setting names to values.")
                cleaned[section] = {}
            elif value and self.check_models and "policy_optimizer" in cleaned:
                try:
                    ml_section_check(section, value, optimizer=cleaned["policy_optimizer"])
                except InvalidInput as error:
                    self.add_error(section, error.message)
        if any(name in self.errors for name in ROUND_FIELDS):
            return cleaned
        probe = construct_instance(self, copy.copy(self.instance), fields=SPEC_MODEL_FIELDS)
        probe.settings = spec_settings(settings=self.instance.settings, cleaned=cleaned)
        try:
            round_settings(campaign=probe)
            campaign_task_kind_check(campaign=probe)  # what a rating campaign cannot run, said now, not at round 0
        except InvalidInput as error:
            self.add_error(None, error.message)
            return cleaned
        if not any(name in self.errors for name in COST_FIELDS):
            self.estimate = round_estimate_of_spec(campaign=probe)
            self._budgets_check(probe)
        return cleaned

    def _budgets_check(self, probe: Campaign) -> None:
        """A budget below one round's estimate is refused, saying the estimate."""
        estimate = self.estimate
        total = estimate.labeling_cost + estimate.gpu_cost
        if probe.money_budget is not None and probe.money_budget < total:
            self.add_error("money_budget", (
                f"A money budget of {_decimal_text(probe.money_budget)} {probe.currency} is below one round's "
                f"estimated cost of {_decimal_text(total)} {probe.currency}: "
                f"{estimate_text(estimate, probe.currency)}. "
                "Raise the budget, or lower pairs_per_round, the overlap or the pay."
            ))
        hours = estimate.gpu_seconds / 3600
        if probe.gpu_hour_budget is not None and probe.gpu_hour_budget < hours:
            self.add_error("gpu_hour_budget", (
                f"A GPU budget of {_decimal_text(probe.gpu_hour_budget)} h is below one round's estimated "
                f"{hours:.4f} h (from earlier runs of the same steps)."
            ))


def estimate_text(estimate: RoundEstimate, currency: str) -> str:
    """One round's estimate in words: "24 pairs x overlap 1 = 24 judgements at 0.1 USD = 2.4 USD, plus ..."."""
    each = estimate.labeling_cost / estimate.judgements if estimate.judgements else Decimal(0)
    gpu = (f", plus {_decimal_text(estimate.gpu_cost)} {currency} of GPU time ({_decimal_text(estimate.gpu_seconds)} s "
           "from earlier runs)") if estimate.gpu_seconds else ", plus GPU time not yet known (no earlier runs)"
    return (f"{estimate.pairs} pairs x overlap {estimate.judgements // max(estimate.pairs, 1)} = {estimate.judgements} "
            f"judgements at {_decimal_text(each)} {currency} = {_decimal_text(estimate.labeling_cost)} {currency}{gpu}")


def _as_field_error(check, value) -> None:
    try:
        check(value)
    except InvalidInput as error:
        raise forms.ValidationError(error.message) from None


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    """A form's messages by field, with "non_field_errors" for the rest (the API's name for them)."""
    return {("non_field_errors" if name == "__all__" else name): [str(m) for m in messages]
            for name, messages in form.errors.items()}


class CampaignSpecInvalid(InvalidInput):
    """A spec the validator refused: `details["fields"]` maps each field (or "non_field_errors") to its messages;
    `form` is the bound form, for a page to show again with them."""

    def __init__(self, form: CampaignSetupForm):
        errors = form_errors(form)
        lines = "; ".join(f"{name}: {' '.join(messages)}" if name != "non_field_errors" else " ".join(messages)
                          for name, messages in errors.items())
        super().__init__(f"The campaign's specification is not valid. {lines}", fields=errors)
        self.form = form


def _spec_data(data, *, base: dict) -> dict:
    """`base` updated with `data`; refuses anything but a mapping of the spec's fields. (A QueryDict gives each
    field's last value.)"""
    if not isinstance(data, Mapping):
        raise InvalidInput("A campaign's specification is a mapping of field names to values.")
    data = dict(data.items())
    unknown = sorted(str(key) for key in data if key not in SPEC_FIELDS)
    if unknown:
        message = f"Unknown field; the specification's fields are {', '.join(SPEC_FIELDS)}."
        raise InvalidInput(f"Unknown field(s) {', '.join(unknown)}: the specification's fields are "
                           f"{', '.join(SPEC_FIELDS)}.", fields={key: [message] for key in unknown})
    return {**base, **data}


def campaign_setup_form(*, campaign: Campaign | None = None) -> CampaignSetupForm:
    """The unbound set-up form of a campaign (None: a new one), showing its spec."""
    instance = Campaign() if campaign is None else campaign
    return CampaignSetupForm(instance=instance, initial=campaign_spec(campaign=instance))


def _bound_form(*, campaign: Campaign | None, data, check_models: bool = True) -> CampaignSetupForm:
    """The set-up form bound to the campaign's spec (None: the defaults) updated with `data`, the fields not given
    keeping their values. The form works on a fresh copy of the campaign: the caller's stays as it is."""
    instance = Campaign() if campaign is None else Campaign.objects.get(pk=campaign.pk)
    spec = campaign_spec(campaign=instance)
    form = CampaignSetupForm(_spec_data(data, base=spec), instance=instance, check_models=check_models)
    form.given = frozenset(spec) & frozenset(data)  # the fields the caller named (an update writes only these)
    return form


# -- the actions ----------------------------------------------------------------------------------------------------


def campaign_creator_check(*, user: AbstractBaseUser | None) -> None:
    """Who may set up a new campaign: staff (None: the command line). AccessDenied for anyone else."""
    if user is not None and not (user.is_authenticated and user.is_active and user.is_staff):
        raise AccessDenied("Only staff may create a campaign.")


def campaign_create(*, data: Mapping, created_by: AbstractBaseUser | None) -> Campaign:
    """A new campaign from a specification (fields not given take their defaults). `created_by` must be staff
    (checked before anything is loaded); None is the command line. CampaignSpecInvalid names every field that is
    wrong; nothing is created then."""
    campaign_creator_check(user=created_by)
    form = _bound_form(campaign=None, data=data)
    if not form.is_valid():
        raise CampaignSpecInvalid(form)
    campaign = form.save(commit=False)
    campaign.settings = spec_settings(settings={}, cleaned=form.cleaned_data)
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:  # made by someone else since the form checked the name
        raise InvalidInput(f"A campaign named {campaign.name!r} already exists.",
                           fields={"name": ["Campaign with this Name already exists."]}) from None
    return campaign


# Fields that name a folder on the server: a manager who could set them could probe the server's files (and have
# the workers load any model there), so only staff and the command line change them.
SERVER_PATH_FIELDS = ("base_model_path", "gold_labeler")


def server_paths_check(*, user: AbstractBaseUser | None, campaign: Campaign, data: Mapping) -> None:
    """AccessDenied when a user who is not staff changes a field that names a folder on the server (None: the
    command line, which runs on the server). Checked before the spec is validated, whose messages would say
    whether a folder exists."""
    if user is None or user.is_staff:
        return

    def given(name: str) -> str:
        value = data.get(name)
        return value.strip() if isinstance(value, str) else value

    changed = [name for name in SERVER_PATH_FIELDS if name in data and given(name) != getattr(campaign, name)]
    if "gold_labeler" in changed and given("gold_labeler") in ("", "vader"):
        changed.remove("gold_labeler")  # choosing no gold labeler or VADER names no folder
    if changed:
        raise AccessDenied(f"Only staff may change {' and '.join(changed)}: they name folders on the server.")


def campaign_update(*, campaign: Campaign, data: Mapping, changed_by: AbstractBaseUser | None) -> Campaign:
    """Change a campaign's specification: the fields given, the rest as they are. Validated first (which may load
    models), then the fields given are written under the campaign's row lock, which the ledger's writers also
    take, so a budget never changes under a charge, and a change made meanwhile to another field is kept.
    CampaignSpecInvalid names every field that is wrong; nothing changes then. `changed_by` None is the command
    line; a manager may change everything but the server folders (`server_paths_check`)."""
    if isinstance(data, Mapping):
        server_paths_check(user=changed_by, campaign=campaign, data=data)
    form = _bound_form(campaign=campaign, data=data)
    if not form.is_valid():
        raise CampaignSpecInvalid(form)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        for name in SPEC_MODEL_FIELDS:
            if name in form.given:
                setattr(locked, name, form.cleaned_data[name])
        locked.settings = spec_settings(settings=locked.settings, cleaned=form.cleaned_data, names=form.given)
        locked.save()
    return locked


@dataclass(frozen=True)
class CostPreview:
    """One round's estimated cost for a spec being edited, and what is wrong with the spec so far."""

    estimate: RoundEstimate | None
    currency: str
    money_budget: Decimal | None
    errors: dict[str, list[str]]

    @property
    def total(self) -> Decimal | None:
        return None if self.estimate is None else self.estimate.labeling_cost + self.estimate.gpu_cost


def campaign_cost_preview(*, campaign: Campaign | None = None, data: Mapping) -> CostPreview:
    """The estimate of one round for a spec (a new campaign's, or `campaign`'s with `data` changed), without
    loading any model: quick enough to follow every change of a form. Saves nothing."""
    form = _bound_form(campaign=campaign, data=data, check_models=False)
    form.is_valid()
    cleaned = getattr(form, "cleaned_data", {})
    return CostPreview(
        estimate=form.estimate, currency=cleaned.get("currency") or "", money_budget=cleaned.get("money_budget"),
        errors=form_errors(form),
    )


DEFAULT_HELDOUT_FRACTION = 0.1


def campaign_prompts_import(*, campaign: Campaign, requested_by: AbstractBaseUser | None,
                            upload: UploadedFile | None = None, dataset_dir: str = "",
                            plays: bool = False, column: str | None = None, heldout_fraction: float | None = None,
                            seed: int | None = None) -> PromptImport:
    """Add prompts to a campaign from exactly one source: an uploaded file (.jsonl, .csv, .txt; its size checked
    before it is read), a `datasets.save_to_disk` folder on this server, or the Shakespeare plays (sizes from the
    round settings). The held-out fraction defaults to 0.1 and the seed to the campaign's. All or nothing
    (annotator.services.prompts); the pages and the API both come here."""
    if (upload is not None) + bool(dataset_dir) + bool(plays) != 1:
        raise InvalidInput("Give exactly one source of prompts: a file, a dataset folder, or the plays.")
    if dataset_dir and requested_by is not None and not requested_by.is_staff:
        raise AccessDenied("Only staff may read a dataset folder on the server; upload a file instead.")
    sizes = round_settings(campaign=campaign)
    if plays:
        added = campaign_prompts_from_plays(campaign=campaign)
        return PromptImport(train=added - sizes.heldout_prompts, heldout=sizes.heldout_prompts, skipped=[])
    options = {
        "column": column or None, "seed": sizes.seed if seed is None else seed,
        "heldout_fraction": DEFAULT_HELDOUT_FRACTION if heldout_fraction is None else heldout_fraction,
    }
    if upload is not None:
        name = upload.name or "upload"
        prompt_file_size_check(name=name, size=upload.size)
        return campaign_prompts_from_file(campaign=campaign, data=upload.read(), name=name, **options)
    return campaign_prompts_from_dataset_dir(campaign=campaign, path=dataset_dir, **options)


def campaigns_for_setup(*, user: AbstractBaseUser):
    """The campaigns a user may set up (every one for staff, else those they manage), with their prompt counts as
    `train_prompt_count` and `heldout_prompt_count`."""
    return campaigns_managed(user=user).annotate(
        train_prompt_count=Count("prompts", filter=Q(prompts__split=PromptSplit.TRAIN)),
        heldout_prompt_count=Count("prompts", filter=Q(prompts__split=PromptSplit.HELDOUT)),
    )


def campaign_prompt_counts(*, campaign: Campaign) -> dict[str, int]:
    """How many train and held-out prompts the campaign has (a read, for the set-up pages and the API)."""
    rows = Prompt.objects.filter(campaign=campaign).values_list("split").annotate(n=Count("pk")).order_by()
    return {split: 0 for split in PromptSplit.values} | dict(rows)


# -- instructions -----------------------------------------------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
LINK_REL = "noopener noreferrer nofollow"


def instructions_render(text: str) -> SafeString:
    """A campaign's instructions as HTML: Markdown (CommonMark with tables; plain text and simple HTML read as they
    did before) rendered by markdown-it, then sanitised by nh3 (ammonia's allow-list: no script, style, event
    handlers or javascript: links), so what staff type can never run in a labeler's browser."""
    return mark_safe(nh3.clean(_MARKDOWN.render(text or ""), link_rel=LINK_REL))  # noqa: S308 (sanitised above)
