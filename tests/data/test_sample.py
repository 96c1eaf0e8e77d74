"""The committed sample files still have what the tests rely on (ids, counts, statuses, no orphans)."""

from __future__ import annotations

from tests.data.make_sample import SAMPLE, check


def test_the_committed_sample_has_the_promised_shape() -> None:
    check(SAMPLE)
