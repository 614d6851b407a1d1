from django.urls import path

from annotator.views import members

app_name = "members"

urlpatterns = [
    path("", members.campaign_list, name="campaigns"),
    path("<slug:name>/", members.campaign_members_view, name="campaign"),
    path("<slug:name>/invite/", members.invitation_new, name="invite"),
    path("<slug:name>/invitations/<int:invitation_id>/withdraw/", members.invitation_revoke_view, name="withdraw"),
]
