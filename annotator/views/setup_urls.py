"""Campaign set-up pages for staff and managers: create and edit a campaign, its prompts, a round's cost preview."""

from django.urls import path

from annotator.views import setup

app_name = "setup"

urlpatterns = [
    path("", setup.campaign_list, name="campaigns"),
    path("new/", setup.campaign_new, name="new"),
    path("new/preview/", setup.campaign_new_preview, name="new_preview"),
    path("<slug:name>/edit/", setup.campaign_edit, name="edit"),
    path("<slug:name>/edit/preview/", setup.campaign_edit_preview, name="edit_preview"),
    path("<slug:name>/prompts/", setup.campaign_prompts, name="prompts"),
]
