"""Campaign set-up over the API: create a campaign from its specification (staff), read and change one (staff, its
managers), preview one round's cost, and add prompts. The specification is checked by
annotator.services.campaign_setup, as for the pages and `manage.py campaign`; a refused one answers 400 with every
field's message under "fields" and changes nothing."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api.hot import validated
from annotator.api.serializers import (
    CampaignSetupSerializer,
    CostPreviewSerializer,
    ErrorSerializer,
    PromptCountsSerializer,
    PromptImportInputSerializer,
    PromptImportSerializer,
)
from annotator.models import Campaign
from annotator.rounds.estimate import RoundEstimate, round_estimate_of_spec
from annotator.services.access import campaign_get_for_manager
from annotator.services.campaign_setup import (
    campaign_cost_preview,
    campaign_create,
    campaign_creator_check,
    campaign_prompt_counts,
    campaign_prompts_import,
    campaign_spec,
    campaign_update,
    estimate_text,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input: `fields` gives each field's messages; nothing "
                         "was changed."),
    401: OpenApiResponse(ErrorSerializer, description="Not logged in and no valid token."),
    403: OpenApiResponse(ErrorSerializer, description="Not staff (creating), or not a manager of this campaign."),
}
SPEC_BODY = OpenApiTypes.OBJECT  # the specification's fields, as docs/campaigns.md lists them
_PROMPT_INPUT = PromptImportInputSerializer()


def estimate_data(estimate: RoundEstimate, currency: str) -> dict:
    return {
        "pairs": estimate.pairs, "judgements": estimate.judgements, "labeling_cost": estimate.labeling_cost,
        "gpu_seconds": estimate.gpu_seconds, "gpu_cost": estimate.gpu_cost,
        "total": estimate.labeling_cost + estimate.gpu_cost, "currency": currency,
        "text": estimate_text(estimate, currency),
    }


def setup_answer(campaign: Campaign, *, status_code: int = status.HTTP_200_OK) -> Response:
    document = {
        "spec": campaign_spec(campaign=campaign),
        "estimate": estimate_data(round_estimate_of_spec(campaign=campaign), campaign.currency),
        "prompts": campaign_prompt_counts(campaign=campaign),
    }
    return Response(CampaignSetupSerializer(document).data, status=status_code)


class CampaignCreateView(APIView):
    @extend_schema(
        summary="Create a campaign from its specification (staff)",
        description="The fields not given take their defaults. The base model and gold labeler named are loaded "
        "(config and tokenizer) before anything is saved; a money budget must cover one round's estimated cost.",
        request=SPEC_BODY,
        responses={201: CampaignSetupSerializer} | ERRORS,
    )
    def post(self, request):
        campaign = campaign_create(data=request.data, created_by=request.user)
        return setup_answer(campaign, status_code=status.HTTP_201_CREATED)


class CampaignPreviewView(APIView):
    @extend_schema(
        summary="One round's estimated cost of a new campaign's specification (staff)",
        description="Checks the specification without loading models and saves nothing.",
        request=SPEC_BODY,
        responses={200: CostPreviewSerializer} | ERRORS,
    )
    def post(self, request):
        campaign_creator_check(user=request.user)
        return _preview_answer(campaign_cost_preview(data=request.data))


def _preview_answer(preview) -> Response:
    estimate = None if preview.estimate is None else estimate_data(preview.estimate, preview.currency)
    return Response(CostPreviewSerializer({"estimate": estimate, "fields": preview.errors}).data)


class CampaignSetupView(APIView):
    @extend_schema(
        summary="A campaign's specification, one round's estimate and its prompt counts (staff, managers)",
        responses={200: CampaignSetupSerializer} | ERRORS,
    )
    def get(self, request, campaign: str):
        return setup_answer(campaign_get_for_manager(user=request.user, campaign=campaign))

    @extend_schema(
        summary="Change a campaign's specification (staff, managers)",
        description="The fields given change; the rest, and any other keys of its settings, stay. The name never "
        "changes; the currency not once money was recorded.",
        request=SPEC_BODY,
        responses={200: CampaignSetupSerializer} | ERRORS,
    )
    def patch(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        return setup_answer(campaign_update(campaign=campaign_row, data=request.data, changed_by=request.user))


class CampaignEstimateView(APIView):
    @extend_schema(
        summary="One round's estimated cost of a campaign (staff, managers)",
        responses={200: CostPreviewSerializer} | ERRORS,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        return _preview_answer(campaign_cost_preview(campaign=campaign_row, data={}))

    @extend_schema(
        summary="One round's estimated cost of a campaign with some fields changed (staff, managers)",
        description="The body's fields over the campaign's; checked without loading models; saves nothing.",
        request=SPEC_BODY,
        responses={200: CostPreviewSerializer} | ERRORS,
    )
    def post(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        return _preview_answer(campaign_cost_preview(campaign=campaign_row, data=request.data))


class CampaignPromptsView(APIView):
    @extend_schema(
        summary="A campaign's prompt counts (staff, managers)",
        responses={200: PromptCountsSerializer} | ERRORS,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        return Response(PromptCountsSerializer(campaign_prompt_counts(campaign=campaign_row)).data)

    @extend_schema(
        summary="Add prompts to a campaign (staff, managers)",
        description="One source: `file` (multipart upload: .jsonl with a `prompt` field or TRL `messages`, .csv "
        "with a named column, .txt one a line; 20 MB at most), `dataset_dir` (a datasets save_to_disk folder on "
        "the server, its \"train\" split for a DatasetDict), or `plays` true. Blank, over-long and duplicate "
        "prompts are skipped and listed; a seeded share is held out. All or nothing: a refused source adds none.",
        request={"multipart/form-data": PromptImportInputSerializer, "application/json": PromptImportInputSerializer},
        responses={201: PromptImportSerializer} | ERRORS,
    )
    def post(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        fields = validated(_PROMPT_INPUT, request.data)
        result = campaign_prompts_import(
            campaign=campaign_row, requested_by=request.user, upload=fields.get("file"), dataset_dir=fields.get("dataset_dir", ""),
            plays=fields["plays"], column=fields.get("column"), heldout_fraction=fields.get("heldout_fraction"),
            seed=fields.get("seed"),
        )
        document = {
            "train": result.train, "heldout": result.heldout,
            "skipped": [{"number": number, "reason": reason} for number, reason in result.skipped],
            "prompts": campaign_prompt_counts(campaign=campaign_row),
        }
        return Response(PromptImportSerializer(document).data, status=status.HTTP_201_CREATED)
