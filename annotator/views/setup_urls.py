"""Campaign set-up pages for staff: create and edit a campaign, its prompts, a round's cost preview."""

urlpatterns: list = []
