from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from annotator.api import docs, setup, views

app_name = "api"

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/setup/", setup.CampaignCreateView.as_view(), name="campaign_create"),
    path("campaigns/setup/preview/", setup.CampaignPreviewView.as_view(), name="campaign_preview"),
    path("campaigns/<slug:campaign>/setup/", setup.CampaignSetupView.as_view(), name="campaign_setup"),
    path("campaigns/<slug:campaign>/setup/estimate/", setup.CampaignEstimateView.as_view(), name="campaign_estimate"),
    path("campaigns/<slug:campaign>/prompts/", setup.CampaignPromptsView.as_view(), name="campaign_prompts"),
    path("campaigns/<slug:campaign>/next/", views.NextItemView.as_view(), name="next"),
    path("campaigns/<slug:campaign>/stats/", views.CampaignStatsView.as_view(), name="stats"),
    path("campaigns/<slug:campaign>/export.jsonl", views.CampaignExportView.as_view(), name="export"),
    path("campaigns/<slug:campaign>/evaluations/", views.EvaluationListView.as_view(), name="evaluations"),
    path(
        "campaigns/<slug:campaign>/evaluations/<int:number>/close/",
        views.EvaluationCloseView.as_view(),
        name="evaluation_close",
    ),
    path("campaigns/<slug:campaign>/leaderboard/", views.LeaderboardView.as_view(), name="leaderboard"),
    path(
        "campaigns/<slug:campaign>/leaderboard/refresh/",
        views.LeaderboardRefreshView.as_view(),
        name="leaderboard_refresh",
    ),
    path("campaigns/<slug:campaign>/leaderboard.csv", views.LeaderboardCsvView.as_view(), name="leaderboard_csv"),
    path("assignments/<str:assignment_id>/judgement/", views.JudgementSubmitView.as_view(), name="judgement"),
    path("assignments/<str:assignment_id>/rating/", views.RatingSubmitView.as_view(), name="rating"),
    path("me/history/", views.HistoryView.as_view(), name="history"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.ApiDocsView.as_view(), name="docs"),
]
