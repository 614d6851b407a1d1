"""The labeling API, and the endpoints of those who run a campaign (staff, and its managers: the export, evaluation
runs, the leaderboard). Each view checks who asks, calls one service or selector, and serializes the answer.
Labelers see only the campaigns they are members of (as labelers); any other answers 404 as a missing one.

Errors from services become 4xx answers in annotator.api.errors. Next item and the two answers are the
labeling hot path: they skip DRF's request cycle (annotator.api.hot) and check an API token in the first
statement their service runs.
"""

import csv
import io
import json
import re

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api import parsers
from annotator.api.export import export_lines
from annotator.api.hot import HotPathView, answer, request_data, validated
from annotator.api.serializers import (
    CampaignSerializer,
    CampaignStatsSerializer,
    ErrorSerializer,
    EvaluationPlanSerializer,
    EvaluationRunSerializer,
    EvaluationStartInputSerializer,
    HistoryEntrySerializer,
    JudgementInputSerializer,
    JudgementOutputSerializer,
    LeaderboardSerializer,
    NextItemSerializer,
    RatingInputSerializer,
    RatingOutputSerializer,
    TokenRequestSerializer,
    TokenSerializer,
    judgement_output_data,
    next_item_data,
    rating_output_data,
)
from annotator.evaluation.export import leaderboard_csv_text, leaderboard_document
from annotator.evaluation.leaderboard import leaderboard_refresh
from annotator.evaluation.plan import evaluation_plan
from annotator.evaluation.runs import evaluation_close, evaluation_start
from annotator.evaluation.selectors import evaluation_run_get, evaluation_runs_for_campaign, leaderboard_latest
from annotator.selectors.campaigns import campaign_statistics
from annotator.selectors.judgements import assignments_answered_by_labeler
from annotator.services.access import (
    campaign_get_for_manager,
    campaign_get_for_viewer,
    campaigns_listed,
    labeler_profile_get,
    number_from_digits,
)
from annotator.services.assignments import assignment_next
from annotator.core.errors import InvalidInput, NotFound
from annotator.services.judgements import judgement_submit, rating_submit

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; nothing was changed."),
    401: OpenApiResponse(ErrorSerializer, description="Not logged in and no valid token."),
    403: OpenApiResponse(
        ErrorSerializer, description="Not a labeler, or neither staff nor the campaign's manager where one is needed."
    ),
    404: OpenApiResponse(ErrorSerializer, description="No such campaign or assignment for you (a campaign you are "
                         "not a labeler of answers as one that does not exist)."),
}
ASSIGNMENT_ID = OpenApiParameter(
    "assignment_id", {"type": "integer", "minimum": 0}, OpenApiParameter.PATH, description="From the next-item answer."
)
SUBMIT_ERRORS = ERRORS | {
    409: OpenApiResponse(
        ErrorSerializer,
        description="already_submitted: the first answer stands. lease_expired: the item went back to the pool.",
    ),
}


class TokenView(ObtainAuthToken):
    serializer_class = TokenRequestSerializer
    # ObtainAuthToken names DRF's own parsers, which answer a deep body with a 500: the project's instead, in
    # ObtainAuthToken's order so the schema stays the same.
    parser_classes = [parsers.FormParser, parsers.MultiPartParser, parsers.JSONParser]

    @extend_schema(
        summary="Your API token, for a username and password",
        auth=[],
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="A field missing or blank, or a wrong username or password."
            ),
            429: OpenApiResponse(ErrorSerializer, description="Too many failed sign-ins for this username lately."),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# History's ?campaign= filter: a campaign's name (a slug, as its URLs take it), or empty for every campaign. One
# spelling for the check and the schema.
CAMPAIGN_FILTER = re.compile(r"[-a-zA-Z0-9_]*")


def _whole_number(raw: str, *, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidInput(f"{name} must be a whole number; got {raw!r}.")
    return number_from_digits(raw)


def _assignment_id(raw: str) -> int:
    return _whole_number(raw, name="Assignment id")


class CampaignListView(APIView):
    @extend_schema(
        responses={200: CampaignSerializer(many=True)} | ERRORS, summary="Active campaigns",
        description="Labelers: the active campaigns they are members of. Staff: every active campaign.",
    )
    def get(self, request):
        return Response(CampaignSerializer(campaigns_listed(user=request.user), many=True).data)


class NextItemView(HotPathView):
    @extend_schema(
        summary="Your current item in a campaign",
        description="Returns the item you hold a live lease on, or claims a new one (the same item comes back on "
        "a retry, never a second copy). Texts are in screen order: `first`, then `second`. "
        "204 with an empty body: nothing is left for you in this campaign. 402: the campaign is paused for budget.",
        responses={
            200: NextItemSerializer,
            204: OpenApiResponse(description="Nothing left for you in this campaign."),
            402: OpenApiResponse(ErrorSerializer, description="The campaign is paused for budget."),
        }
        | ERRORS,
    )
    def get(self, request, labeler, campaign: str):
        leases = assignment_next(labeler=labeler, campaign=campaign, prefetch=0)
        if not leases:
            return HttpResponse(status=status.HTTP_204_NO_CONTENT)
        return answer(next_item_data(leases[0]))


_JUDGEMENT_INPUT = JudgementInputSerializer()
_RATING_INPUT = RatingInputSerializer()


class JudgementSubmitView(HotPathView):
    @extend_schema(
        summary="Answer a pairwise item",
        description='`choice` is "first" / "second" (the texts in the order the next-item answer gave them), '
        '"tie" or "both_bad". A second submit of the same assignment is refused with 409 and changes nothing.',
        parameters=[ASSIGNMENT_ID],
        request=JudgementInputSerializer,
        responses={201: JudgementOutputSerializer} | SUBMIT_ERRORS,
    )
    def post(self, request, labeler, assignment_id: str):
        assignment_pk = _assignment_id(assignment_id)
        fields = validated(_JUDGEMENT_INPUT, request_data(request))
        judgement = judgement_submit(
            labeler=labeler,
            assignment_id=assignment_pk,
            screen_choice=fields["choice"],
            strength=fields["strength"],
            rationale=fields["rationale"],
            milliseconds=fields["milliseconds"],
        )
        return answer(judgement_output_data(judgement), status=status.HTTP_201_CREATED)


class RatingSubmitView(HotPathView):
    @extend_schema(
        summary="Answer a rating item",
        parameters=[ASSIGNMENT_ID],
        request=RatingInputSerializer,
        responses={201: RatingOutputSerializer} | SUBMIT_ERRORS,
    )
    def post(self, request, labeler, assignment_id: str):
        assignment_pk = _assignment_id(assignment_id)
        fields = validated(_RATING_INPUT, request_data(request))
        rating = rating_submit(labeler=labeler, assignment_id=assignment_pk, **fields)
        return answer(rating_output_data(rating), status=status.HTTP_201_CREATED)


class HistoryPagination(PageNumberPagination):
    """?page_size= from 1 to 500; anything else is refused (DRF's own pagination would ignore it silently)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        size = _whole_number(raw, name="page_size")
        if not 1 <= size <= self.max_page_size:
            raise InvalidInput(f"page_size must be from 1 to {self.max_page_size}; got {raw}.")
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = f"Answers per page, 1 to {self.max_page_size} (default {self.page_size})."
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] |= {"minimum": 1}
        return parameters


@extend_schema(
    summary="Your answered items, newest first",
    parameters=[
        OpenApiParameter(
            "campaign", str, description="Only this campaign (by name; empty: all).",
            pattern=f"^{CAMPAIGN_FILTER.pattern}$",
        )
    ],
    responses={200: HistoryEntrySerializer(many=True)} | ERRORS,
)
class HistoryView(ListAPIView):
    serializer_class = HistoryEntrySerializer
    pagination_class = HistoryPagination

    def get_queryset(self):
        labeler_profile_get(user=self.request.user)
        campaign = self.request.query_params.get("campaign")
        if campaign is not None and not CAMPAIGN_FILTER.fullmatch(campaign):
            raise InvalidInput(f"campaign must be a campaign's name (letters, digits, - and _); got {campaign!r}.")
        return assignments_answered_by_labeler(labeler=self.request.user, campaign_name=campaign)


class CampaignStatsView(APIView):
    @extend_schema(
        summary="Campaign statistics",
        description="Staff: any campaign, with money; a manager: the campaigns they manage, with money. Labelers: the "
        "active campaigns they are members of, in aggregate, with their own progress.",
        responses={200: CampaignStatsSerializer} | ERRORS,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_viewer(user=request.user, campaign=campaign)
        return Response(CampaignStatsSerializer(campaign_statistics(campaign=campaign_row, viewer=request.user)).data)


class JsonLinesRenderer(BaseRenderer):
    """One JSON document per line; error answers on an export URL come out as a single line."""

    media_type = "application/jsonl"
    format = "jsonl"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return (json.dumps(data, default=str) + "\n").encode()


class CampaignExportView(APIView):
    renderer_classes = [JsonLinesRenderer, JSONRenderer]

    @extend_schema(
        summary="Export judgements as JSON lines (staff, managers)",
        description="One line per judgement: prompt, chosen, rejected (the form TRL's reward and DPO trainers read), "
        "plus `tie` and `both_bad` flags: on such lines chosen/rejected are simply completions a and b, so filter "
        "or weight them on the flags, never by accident. Rating campaigns give one line per rating with "
        "`completion` and `rating`.",
        responses={(200, "application/jsonl"): OpenApiTypes.STR} | ERRORS,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        response = StreamingHttpResponse(
            (json.dumps(line) + "\n" for line in export_lines(campaign=campaign_row)),
            content_type="application/jsonl",
        )
        response["Content-Disposition"] = f'attachment; filename="{campaign_row.name}.jsonl"'
        return response


# --- evaluation (staff and the campaign's managers) -------------------------------------------------------------------

EVALUATION_NUMBER = OpenApiParameter(
    "number", {"type": "integer", "minimum": 0}, OpenApiParameter.PATH, description="The run's number in its campaign."
)
BUDGET_REFUSAL = {
    402: OpenApiResponse(ErrorSerializer, description="The campaign's budget cannot cover the plan; nothing was "
                         "started. `cost` and `left` give the figures."),
}
NO_RUN = {404: OpenApiResponse(ErrorSerializer, description="No such campaign, or no run of that number in it.")}
NO_LEADERBOARD = {404: OpenApiResponse(ErrorSerializer, description="No such campaign, or no leaderboard yet.")}
_EVALUATION_INPUT = EvaluationStartInputSerializer()


def _run_answer(campaign, number: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The run as the runs list shows it (re-read: with no broker its sampling task ran on commit, in this request)."""
    run = evaluation_runs_for_campaign(campaign=campaign).get(number=number)
    return Response(EvaluationRunSerializer(run).data, status=status_code)


class EvaluationListView(APIView):
    @extend_schema(
        summary="A campaign's evaluation runs, newest first (staff, managers)",
        responses={200: EvaluationRunSerializer(many=True)} | ERRORS,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        return Response(EvaluationRunSerializer(evaluation_runs_for_campaign(campaign=campaign_row), many=True).data)

    @extend_schema(
        summary="Check and start an evaluation run (staff, managers)",
        description="Plans a blind evaluation of the campaign's checkpoints on held-out prompts (every pair on every "
        "prompt, plus blind ratings) and starts it: 201 with the run, whose sampling step is queued (or has run, "
        "with no broker). With `dry_run` true: 200 with the plan's figures and cost, and nothing is written. A "
        "refused plan (400: a checkpoint of another campaign, too few prompts, ...; 402: over budget) writes nothing.",
        request=EvaluationStartInputSerializer,
        responses={201: EvaluationRunSerializer, 200: EvaluationPlanSerializer} | ERRORS | BUDGET_REFUSAL,
    )
    def post(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        fields = validated(_EVALUATION_INPUT, request.data)
        plan = evaluation_plan(campaign=campaign_row, device_type="cpu", **_EVALUATION_INPUT.plan_arguments(fields))
        if fields["dry_run"]:
            return Response(EvaluationPlanSerializer(plan).data)
        run = evaluation_start(plan=plan, created_by=request.user)
        return _run_answer(campaign_row, run.number, status_code=status.HTTP_201_CREATED)


class EvaluationCloseView(APIView):
    @extend_schema(
        summary="Close a labeling evaluation run now (staff, managers)",
        description="Its open items close; the answers so far are kept and count on the leaderboard. A run still "
        "sampling (or failed) has nothing to close: 400. Closing a closed run changes nothing.",
        parameters=[EVALUATION_NUMBER],
        request=None,
        responses={200: EvaluationRunSerializer} | ERRORS | NO_RUN,
    )
    def post(self, request, campaign: str, number: int):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        run = evaluation_run_get(campaign=campaign_row, number=number)
        if run is None:
            raise NotFound(f"Campaign {campaign_row.name!r} has no evaluation {number}.")
        evaluation_close(run=run, force=True)
        return _run_answer(campaign_row, run.number)


def _no_leaderboard(campaign) -> NotFound:
    return NotFound(f"No leaderboard yet: campaign {campaign.name!r} has no evaluation answers ranked. Start an "
                    "evaluation, let labelers answer it, then POST to its leaderboard/refresh/.")


class LeaderboardView(APIView):
    @extend_schema(
        summary="The newest leaderboard of a campaign's checkpoints (staff, managers)",
        description="Bradley-Terry ratings from the blind battles (base = 1000, 95 % bootstrap intervals, and "
        "length-controlled), the blind ratings, the over-optimisation view and the recommended checkpoint, from "
        "the newest snapshot. `stale`: answers came in since it was computed (POST leaderboard/refresh/). "
        "404 before the first snapshot.",
        responses={200: LeaderboardSerializer} | ERRORS | NO_LEADERBOARD,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        snapshot = leaderboard_latest(campaign=campaign_row)
        if snapshot is None:
            raise _no_leaderboard(campaign_row)
        return Response(leaderboard_document(snapshot=snapshot))


class LeaderboardRefreshView(APIView):
    @extend_schema(
        summary="Recompute the leaderboard from the answers so far (staff, managers)",
        description="Closes the runs whose answers are all in, re-prioritises the open battles and stores a new "
        "snapshot when answers came in since the newest (a bootstrap: seconds). Answers as the GET does; 404 while "
        "there are no evaluation answers at all.",
        request=None,
        responses={200: LeaderboardSerializer} | ERRORS | NO_LEADERBOARD,
    )
    def post(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        snapshot = leaderboard_refresh(campaign=campaign_row)
        if snapshot is None:
            raise _no_leaderboard(campaign_row)
        return Response(leaderboard_document(snapshot=snapshot))


class CsvRenderer(BaseRenderer):
    """For error answers on a CSV URL asked for as text/csv: a header row and a row of values."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["detail", "code"])
        writer.writerow([data.get("detail", ""), data.get("code", "")] if isinstance(data, dict) else [data, ""])
        return out.getvalue().encode()


class LeaderboardCsvView(APIView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        summary="The newest leaderboard as CSV (staff, managers)",
        description="The staff page's download: one row per checkpoint, ranked, with its intervals, win rate against "
        "the base, blind ratings and whether it is the recommended one. 404 before the first snapshot.",
        responses={(200, "text/csv"): OpenApiTypes.STR} | ERRORS | NO_LEADERBOARD,
    )
    def get(self, request, campaign: str):
        campaign_row = campaign_get_for_manager(user=request.user, campaign=campaign)
        snapshot = leaderboard_latest(campaign=campaign_row)
        if snapshot is None:
            raise _no_leaderboard(campaign_row)
        response = HttpResponse(leaderboard_csv_text(snapshot.data), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{campaign_row.name}-leaderboard.csv"'
        return response
