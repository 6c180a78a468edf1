"""BucketBatchSampler: coverage, padded-audio budget, per-epoch order, sharding, exact resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import DataLoader

from speechseq.data.collate import SpeechCollator
from speechseq.data.readers import load_fsdd
from speechseq.data.sampler import BucketBatchSampler
from speechseq.errors import ConfigError


@pytest.fixture(scope="module")
def durations() -> np.ndarray:
    """A skewed spread of lengths, like a real corpus (0.3-12 s)."""
    return np.random.default_rng(0).gamma(2.0, 1.5, size=997).clip(0.3, 12.0)


def _flat(batches: list[list[int]]) -> list[int]:
    return [i for b in batches for i in b]


def _padded(batches: list[list[int]], durations: np.ndarray) -> float:
    return sum(len(b) * durations[b].max() for b in batches)


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_once_per_epoch(durations: np.ndarray, shuffle: bool) -> None:
    sampler = BucketBatchSampler(durations, max_batch_seconds=40.0, shuffle=shuffle, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(_flat(batches)) == list(range(len(durations)))
        assert len(batches) == len(sampler)


def test_padded_audio_budget_and_max_batch_size(durations: np.ndarray) -> None:
    sampler = BucketBatchSampler(durations, max_batch_seconds=30.0, max_batch_size=16, seed=1)
    batches = list(sampler)
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) * durations[batch].max() <= 30.0 + 1e-9
        assert list(durations[batch]) == sorted(durations[batch], reverse=True)  # longest first
    # Dynamic batch size: short utterances travel in bigger batches than long ones.
    shortest = next(b for b in batches if int(np.argmin(durations)) in b)
    longest = next(b for b in batches if int(np.argmax(durations)) in b)
    assert len(shortest) > 3 * len(longest)
    # Bucketing wastes far less padding than batches of random utterances of the same sizes.
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(durations)).tolist()
    sizes = np.cumsum([len(b) for b in batches])[:-1]
    random_batches = [list(x) for x in np.split(np.array(perm), sizes)]
    real = durations.sum()
    assert _padded(batches, durations) / real < 1.10 < _padded(random_batches, durations) / real


def test_utterance_longer_than_budget_is_a_batch_of_one(caplog: pytest.LogCaptureFixture) -> None:
    sampler = BucketBatchSampler([1.0, 9.0, 1.0, 1.0], max_batch_seconds=4.0, shuffle=False)
    assert list(sampler) == [[0, 2, 3], [1]]
    assert "exceed max_batch_seconds" in caplog.text


def test_order_depends_on_seed_and_epoch_only(durations: np.ndarray) -> None:
    def batches(seed: int, epoch: int) -> list[list[int]]:
        sampler = BucketBatchSampler(durations, max_batch_seconds=40.0, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert batches(7, 2) == batches(7, 2)
    assert batches(7, 2) != batches(7, 3)
    assert batches(7, 2) != batches(8, 2)
    # Not only the batch order changes between epochs: the batch composition does too.
    assert {tuple(sorted(b)) for b in batches(7, 2)} != {tuple(sorted(b)) for b in batches(7, 3)}
    fixed = BucketBatchSampler(durations, max_batch_seconds=40.0, shuffle=False)
    first = list(fixed)
    fixed.set_epoch(5)
    assert list(fixed) == first
    assert sorted(durations[[b[0] for b in first]]) == list(durations[[b[0] for b in first]])


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_ranks_are_disjoint_equal_sized_and_cover_everything(durations: np.ndarray, replicas: int) -> None:
    def shards(drop_last: bool) -> list[list[list[int]]]:
        out = []
        for rank in range(replicas):
            sampler = BucketBatchSampler(
                durations, 40.0, seed=2, num_replicas=replicas, rank=rank, drop_last=drop_last
            )
            sampler.set_epoch(1)
            out.append(list(sampler))
        return out

    full = BucketBatchSampler(durations, 40.0, seed=2)
    global_batches = full.global_batches(1)
    padded = shards(drop_last=False)
    assert len({len(s) for s in padded}) == 1
    assert len(padded[0]) == -(-len(global_batches) // replicas)
    counts = Counter(_flat([b for s in padded for b in s]))
    assert set(counts) == set(range(len(durations)))
    # Only the repeated batches (the first few, DistributedSampler's rule) appear twice.
    extra = len(padded[0]) * replicas - len(global_batches)
    repeated = set(_flat(global_batches[:extra]))
    assert {i for i, c in counts.items() if c > 1} == repeated
    assert all(c == 1 for i, c in counts.items() if i not in repeated)
    dropped = shards(drop_last=True)
    flat = _flat([b for s in dropped for b in s])
    assert len(flat) == len(set(flat)) and len({len(s) for s in dropped}) == 1
    kept = len(global_batches) - len(global_batches) % replicas
    assert sorted(flat) == sorted(_flat(global_batches[:kept]))


def test_accelerate_batch_sampler_shard_over_an_unsharded_sampler(durations: np.ndarray) -> None:
    """Option B of the module docstring: accelerate deals our batches to the processes."""
    sampler = BucketBatchSampler(durations, 40.0, seed=4)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(BatchSamplerShard(sampler, 2, 0))
    assert sorted(set(_flat(shards[0] + shards[1]))) == list(range(len(durations)))
    assert shards[0] == list(sampler)[0::2]


@pytest.mark.parametrize("replicas", [1, 3])
def test_resume_mid_epoch_gives_exactly_the_remaining_batches(durations: np.ndarray, replicas: int) -> None:
    for rank in range(replicas):
        original = BucketBatchSampler(durations, 40.0, seed=9, num_replicas=replicas, rank=rank)
        original.set_epoch(2)
        expected = list(original)
        iterator = iter(original)
        done = [next(iterator) for _ in range(7)]
        # Rank 0's state restores every rank (accelerate saves registered objects on rank 0 only).
        rank0 = BucketBatchSampler(durations, 40.0, seed=9, num_replicas=replicas, rank=0)
        rank0.set_epoch(2)
        rank0_iterator = iter(rank0)
        for _ in range(7):
            next(rank0_iterator)
        assert rank0.state_dict() == original.state_dict()
        resumed = BucketBatchSampler(durations, 40.0, seed=9, num_replicas=replicas, rank=rank)
        resumed.load_state_dict(rank0.state_dict())
        resumed.set_epoch(2)  # the loop calls this again when it re-enters the epoch
        assert len(resumed) == len(expected) - 7
        assert done + list(resumed) == expected
        resumed.set_epoch(3)  # later epochs are whole again
        original.set_epoch(3)
        assert list(resumed) == list(original)


def test_state_with_consumed_count_and_config_mismatch(durations: np.ndarray) -> None:
    sampler = BucketBatchSampler(durations, 40.0, seed=1)
    expected = list(sampler)
    iterator = iter(sampler)
    for _ in range(10):  # as if a DataLoader had prefetched 10 batches ...
        next(iterator)
    state = sampler.state_dict(consumed=6)  # ... of which the loop trained on 6
    fresh = BucketBatchSampler(durations, 40.0, seed=1)
    fresh.load_state_dict(state)
    assert list(fresh) == expected[6:]
    with pytest.raises(ConfigError, match="max_batch_seconds"):
        BucketBatchSampler(durations, 50.0, seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="num_samples"):
        BucketBatchSampler(durations[:-1], 40.0, seed=1).load_state_dict(state)


def test_bad_durations_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"bad indices \[1\]"):
        BucketBatchSampler([1.0, float("nan"), 2.0], 10.0)
    with pytest.raises(ConfigError, match="rank"):
        BucketBatchSampler([1.0], 10.0, num_replicas=2, rank=2)


def test_dataloader_over_fsdd_with_collator(fsdd_dir: Path) -> None:
    class Letters:
        def encode(self, text: str) -> list[int]:
            return [3 + ord(c) - ord("a") for c in text]

    ds = load_fsdd(fsdd_dir, split="test", speakers=["george", "lucas"])
    sampler = BucketBatchSampler(ds["duration"], max_batch_seconds=6.0, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=SpeechCollator(Letters(), 8000))
    seen = []
    for batch in loader:
        assert batch["wave"].shape[0] * batch["wave"].shape[1] <= 6.0 * 8000
        seen += batch["ids"]
    assert sorted(seen) == sorted(ds["id"]) and len(seen) == 100
