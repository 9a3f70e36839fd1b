"""Two annotators saving the same image at once on real Postgres: one wins, the other gets 409."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from annotations.models import AnnotationSet
from annotations.services import annotations_replace
from projects.errors import Conflict

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_saves_from_the_same_version_let_exactly_one_through(project, image_factory, alice, bob):
    image = image_factory(project, size=64)[0]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def save(user, polygon):
        try:
            barrier.wait(timeout=10)
            annotations_replace(image=image, polygons=[{"outer": polygon}], expected_version=0, actor=user)
            outcomes[user.username] = "saved"
        except Conflict:
            outcomes[user.username] = "conflict"
        finally:
            connection.close()  # each thread has its own connection

    threads = [
        threading.Thread(target=save, args=(alice, [[1, 1], [30, 1], [30, 30]])),
        threading.Thread(target=save, args=(bob, [[5, 5], [60, 5], [60, 60]])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["conflict", "saved"]
    annotation_set = AnnotationSet.objects.get(image=image)
    winner = next(name for name, outcome in outcomes.items() if outcome == "saved")
    assert annotation_set.version == 1 and annotation_set.annotations.count() == 1
    assert annotation_set.updated_by.username == winner
