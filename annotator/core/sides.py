"""Screen order: labelers (the web page and the API alike) speak of the texts as they saw them, the database
of completions A and B.

The texts are "first" and "second" in the order shown (first = left on the page); `assignment.swapped` says
that completion B was shown first. An answer names "first" / "second" / "tie" / "both_bad", and is stored as
"a" / "b" / "tie" / "both_bad" of the comparison. Showing and recording go through this one rule.
"""

from annotator.models import Assignment, Choice, Comparison, TaskKind

FIRST = "first"
SECOND = "second"
SCREEN_CHOICES = [FIRST, SECOND, Choice.TIE.value, Choice.BOTH_BAD.value]


def item_kind(comparison: Comparison) -> str:
    """An item's own kind: a rating item has no completion B (annotator_answer reads it by the same rule)."""
    return TaskKind.RATING.value if comparison.completion_b_id is None else TaskKind.PAIRWISE.value


def completion_choice(*, screen_choice: str, swapped: bool) -> str:
    """The stored choice (a / b / tie / both_bad) for the side the labeler picked."""
    if screen_choice == FIRST:
        return Choice.B if swapped else Choice.A
    if screen_choice == SECOND:
        return Choice.A if swapped else Choice.B
    return screen_choice


def screen_choice(*, choice: str, swapped: bool) -> str:
    """The side the labeler picked, from a stored choice (the inverse of `completion_choice`)."""
    if choice == Choice.A:
        return SECOND if swapped else FIRST
    if choice == Choice.B:
        return FIRST if swapped else SECOND
    return choice


def screen_texts(assignment: Assignment) -> tuple[str, str | None]:
    """(first, second) texts as shown; a rating item has only a first."""
    comparison = assignment.comparison
    if comparison.completion_b is None:
        return comparison.completion_a.text, None
    if assignment.swapped:
        return comparison.completion_b.text, comparison.completion_a.text
    return comparison.completion_a.text, comparison.completion_b.text
