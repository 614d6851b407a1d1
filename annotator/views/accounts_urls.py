"""Account pages: invitations, password reset, a labeler's own work and earnings."""

urlpatterns: list = []
