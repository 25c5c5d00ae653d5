import random

import pytest

from speech_s2s.data.batches import make_batches
from speech_s2s.data.sampler import BucketingSampler

FRAMES = tuple(random.Random(7).randint(50, 1500) for _ in range(300))


def _sampler(rank: int = 0, world_size: int = 1, **overrides) -> BucketingSampler:
    return BucketingSampler(**{"num_frames": FRAMES, "max_frames": 3000, "seed": 3, "rank": rank, "world_size": world_size, **overrides})


def test_one_process_gets_exactly_the_batches_of_make_batches_so_runs_under_way_resume_unchanged():
    for epoch in (0, 1, 5):
        expected = make_batches(list(FRAMES), 3000, 3, epoch, shuffle=epoch >= 1)
        assert [indices for _, indices in _sampler().rank_batches(epoch)] == expected
        assert [position for position, _ in _sampler().rank_batches(epoch, start=4)] == list(range(4, len(expected)))


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_ranks_share_out_whole_rounds_of_the_global_batches_without_overlap(world_size):
    shares = [_sampler(rank, world_size).rank_batches(epoch=2) for rank in range(world_size)]
    global_batches = _sampler().global_batches(2)
    assert len({len(share) for share in shares}) == 1  # every rank runs the same number of steps
    assert len(shares[0]) == len(global_batches) // world_size
    positions = sorted(position for share in shares for position, _ in share)
    assert positions == list(range(len(shares[0]) * world_size))  # the dropped tail is shorter than one round
    utterances = [i for share in shares for _, indices in share for i in indices]
    assert len(utterances) == len(set(utterances))  # disjoint shares
    for share in shares:
        assert all(indices == global_batches[position] for position, indices in share)
    assert _sampler(world_size=world_size).epoch_length(2) == len(positions)


def test_a_saved_position_means_the_same_batches_on_any_number_of_processes():
    on_four = [_sampler(rank, 4).rank_batches(epoch=1) for rank in range(4)]
    consumed = 3 * 4  # three steps of four processes
    rest_on_one = _sampler().rank_batches(epoch=1, start=consumed)
    assert rest_on_one[0] == (consumed, on_four[0][3][1])
    on_three = [_sampler(rank, 3).rank_batches(epoch=1, start=consumed) for rank in range(3)]
    assert [share[0][0] for share in on_three] == [12, 13, 14]
    total = len(_sampler().global_batches(1))
    assert _sampler(world_size=3).is_epoch_done(1, total - 2) and not _sampler(world_size=3).is_epoch_done(1, total - 3)


def test_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not one of 2 processes"):
        _sampler(rank=2, world_size=2)
