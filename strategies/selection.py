"""Choosing one candidate among scored ones: what best-of-N and the search
strategies share.

A coarse verifier gives many candidates the same score (the step checker
has a handful of levels), and then the vote among the best-scored
candidates is far better evidence than the confidence of any one of them:
among the candidates that share the best score, the answer most of them
give wins, then the one with the most confident candidate, then the one
seen first. With ``weighted_vote`` the answer whose candidates carry the
most score in total wins instead (the PRM-weighted vote of Snell et al.).
Either way a candidate that gave no answer is chosen only when none did:
whatever its steps score, it has nothing to return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.core.answers import AnswerGroup
from ponder.strategies.voting import VoteBook

SAME_SCORE = 1e-9
"""Relative difference under which two scores are one (float noise)."""


def select(
    book: VoteBook, scores: Sequence[float], confidences: Sequence[float], *, weighted_vote: bool
) -> tuple[int, AnswerGroup | None]:
    """The chosen candidate's index and its answer class (None when no
    candidate gave an answer). ``book`` holds every candidate's answer,
    weighted by its score; ``confidences`` breaks what the scores and votes
    leave tied, then the lower index does."""
    order = {id(c): rank for rank, c in enumerate(book.classes)}

    def most_confident(members: Sequence[int]) -> int:
        return max(members, key=lambda m: (scores[m], confidences[m], -m))

    if not book.classes:
        return most_confident(range(len(scores))), None
    if weighted_vote:
        winner = max(
            book.classes,
            key=lambda c: (c.weight, max(confidences[m] for m in c.members), -order[id(c)]),
        )
        return most_confident(winner.members), winner
    top = max(scores[m] for c in book.classes for m in c.members)
    voters = [
        (c, [m for m in c.members if math.isclose(scores[m], top, rel_tol=SAME_SCORE)])
        for c in book.classes
    ]
    winner, members = max(
        ((c, members) for c, members in voters if members),
        key=lambda cm: (len(cm[1]), max(confidences[m] for m in cm[1]), -order[id(cm[0])]),
    )
    return most_confident(members), winner
