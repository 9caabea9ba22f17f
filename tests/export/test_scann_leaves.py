"""`export.scann_leaves`: the ScaNN tree's size and how many leaves a query searches (no scann
needed: plain arithmetic, checked here against hand-worked cases)."""

import pytest

from tf_ccl4rec.export import SCANN_POINTS_SEARCHED_PER_FETCHED, scann_leaves


@pytest.mark.parametrize(
    "num_videos, k, share, expected",
    [
        # 1.7 M videos: round(sqrt) = 1,304 leaves; 5 % -> ceil(65.2) = 66; the fetch of 1,050
        # needs ceil(4 * 1050 * 1304 / 1.7e6) = ceil(3.2) = 4 leaves: the share decides.
        (1_700_000, 1_050, 0.05, (1304, 66)),
        # MovieLens dev half, N = 2 % (31) + 50 history = 81: 40 leaves of ~39 videos; 5 % -> 2
        # leaves (78 videos < 81 fetched); 4 * 81 * 40 / 1562 = 8.3 -> 9 leaves: the floor decides.
        (1_562, 81, 0.05, (40, 9)),
        # N = 10 %: 4 * 206 * 40 / 1562 = 21.1 -> 22 leaves.
        (1_562, 206, 0.05, (40, 22)),
        # the share still rules when it asks for more than the floor
        (1_562, 81, 0.5, (40, 20)),
        # a fetch larger than a quarter of the catalogue searches every leaf
        (100, 30, 0.05, (10, 10)),
        # at least 2 leaves (one leaf returns nothing), never more than there are videos
        (3, 1, 0.05, (2, 2)),
    ],
)
def test_scann_leaves(num_videos, k, share, expected):
    assert SCANN_POINTS_SEARCHED_PER_FETCHED == 4  # the cases above are worked out for 4
    assert scann_leaves(num_videos, k, share) == expected
