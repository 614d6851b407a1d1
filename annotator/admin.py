import json

from django import forms
from django.contrib import admin
from django.db.models import JSONField
from django.urls import reverse
from django.utils.html import format_html

from annotator import models


class IndentedJSONField(forms.JSONField):
    """JSON shown indented, one key a line, so a campaign's settings can be read (and its round sizes found)."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=self.encoder)


@admin.register(models.LabelerProfile)
class LabelerProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "pay_per_judgement", "hourly_rate", "api_cost_per_call"]
    list_filter = ["kind"]
    search_fields = ["user__username"]


class GpuPriceInline(admin.TabularInline):
    model = models.GpuPrice
    extra = 0


@admin.register(models.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "task_kind", "is_active", "overlap", "money_budget", "currency", "gpu_hour_budget"]
    list_filter = ["task_kind", "is_active"]
    search_fields = ["name", "title"]
    inlines = [GpuPriceInline]
    readonly_fields = ["set_up_page"]
    formfield_overrides = {JSONField: {"form_class": IndentedJSONField, "widget": forms.Textarea(attrs={"rows": 18})}}

    @admin.display(description="Set-up page")
    def set_up_page(self, campaign: models.Campaign) -> str:
        """The page that checks what is typed here (round sizes, models, budget against a round); the admin does not."""
        if campaign.pk is None:
            return format_html('<a href="{}">New campaign, checked</a>', reverse("setup:new"))
        return format_html('<a href="{}">Edit {} with its checks</a>', reverse("setup:edit", args=[campaign.name]),
                           campaign.name)


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["campaign", "number", "state", "started_at", "finished_at"]
    list_filter = ["state", "campaign"]


@admin.register(models.PolicyCheckpoint)
class PolicyCheckpointAdmin(admin.ModelAdmin):
    list_display = ["campaign", "round", "label", "kl_from_base", "path"]
    list_filter = ["campaign"]


@admin.register(models.RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    list_display = ["campaign", "round", "heldout_accuracy", "gold_agreement", "path"]


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "split", "__str__"]
    list_filter = ["campaign", "split"]
    search_fields = ["text"]


@admin.register(models.Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "checkpoint", "reward_score", "gold_score"]
    raw_id_fields = ["prompt", "checkpoint"]
    search_fields = ["text"]


@admin.register(models.Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "round", "purpose", "priority", "judgements_wanted", "is_open"]
    list_filter = ["campaign", "purpose", "is_open"]
    raw_id_fields = ["prompt", "completion_a", "completion_b", "round"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "labeler", "status", "swapped", "leased_until", "reserved_amount"]
    list_filter = ["status"]
    raw_id_fields = ["comparison", "labeler"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Judgements, ratings and ledger entries are append-only: the admin can look, never edit or delete."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(models.Judgement)
class JudgementAdmin(ReadOnlyAdmin):
    list_display = ["id", "assignment", "choice", "strength", "milliseconds", "created_at"]
    list_filter = ["choice", "strength"]


@admin.register(models.Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["id", "assignment", "value", "milliseconds", "created_at"]


@admin.register(models.LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "category", "amount", "quantity", "unit", "labeler", "round", "created_at"]
    list_filter = ["campaign", "category"]
