"""Torch views of the packed splits: a map-style dataset and a resumable, shardable epoch sampler.

Every random draw of a sample (its affine, flip, jitter, erasing) comes from a generator seeded by
(seed, epoch, index), and the epoch's order from a generator seeded by (seed, epoch). Hence a run
resumed mid-epoch replays exactly the batches the interrupted run would have seen, whatever the
number of DataLoader workers, and DDP ranks see disjoint shards of the same permutation (what
`DistributedSampler` does, plus the mid-epoch offset it lacks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from train.augment import AugmentParams, compose, photometric, random_affine, resize_matrix, warp_image, warp_map


class FERDataset(Dataset):
    """Items: (image uint8 (C, S, S), AU map uint8 (S, S), map valid bool, label int64).

    Indexing takes `i` or `(i, epoch)`; the epoch only seeds the augmentation. AU maps are either
    precomputed (`maps`, `valid`) or, for datasets too large for that (AffectNet at 224 px would need
    14 GB), drawn per item from `landmarks` (stored-image pixels) with `edgefer.au.au_map`.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        maps: np.ndarray | None,
        valid: np.ndarray | None,
        input_size: int,
        augment: AugmentParams | None = None,
        seed: int = 0,
        landmarks: np.ndarray | None = None,
    ) -> None:
        if maps is None:
            if landmarks is None or len(landmarks) != len(images):
                raise ValueError("without precomputed AU maps, landmarks for every image are needed")
            valid = np.zeros(len(images), bool)  # unused: decided per item
        elif valid is None or not (len(images) == len(maps) == len(valid)):
            raise ValueError("images, maps and valid flags must have the same length")
        if len(images) != len(labels):
            raise ValueError("images and labels must have the same length")
        if maps is not None and len(maps) and maps.shape[1:] != (input_size, input_size):
            raise ValueError(f"AU maps are {maps.shape[1:]}, expected ({input_size}, {input_size})")
        self.landmarks = landmarks
        self.images = images
        self.labels = labels.astype(np.int64)
        self.maps = maps
        self.valid = valid.astype(bool)
        self.size = int(input_size)
        self.augment = augment if augment is not None and augment.enabled else None
        self.seed = int(seed)
        self.base = resize_matrix(images.shape[1], self.size)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]):
        i, epoch = (key if isinstance(key, tuple) else (key, 0))
        i = int(i)
        if self.maps is None:
            from edgefer.au import au_map

            if self.landmarks is None:
                raise ValueError("FERDataset without precomputed maps needs the landmarks to draw them")
            stored = self.images.shape[1]
            m = au_map(self.landmarks[i], int(self.labels[i]), (self.size, self.size), frame_size=(stored, stored))
            valid = m is not None
            amap = (np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8) if m is not None
                    else np.zeros((self.size, self.size), np.uint8))
        else:
            amap = self.maps[i]
            valid = bool(self.valid[i])
        if self.augment is None:
            image = warp_image(self.images[i], self.base, self.size)
        else:
            rng = np.random.default_rng((self.seed, int(epoch), i))
            aff = random_affine(rng, self.size, self.augment)
            image = warp_image(self.images[i], compose(aff, self.base), self.size)
            image = photometric(image, rng, self.augment)
            if valid:
                amap = warp_map(amap, aff, self.size)
                valid = bool(amap.max() > 0)
        image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return (
            torch.from_numpy(np.ascontiguousarray(image)),
            torch.from_numpy(np.ascontiguousarray(amap)),
            torch.tensor(valid),
            torch.tensor(self.labels[i]),
        )


class EpochSampler(Sampler):
    """Seeded permutation per epoch, sharded across `world` ranks, optionally skipping done batches."""

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1, shuffle: bool = True) -> None:
        self.n = n
        self.seed = seed
        self.rank = rank
        self.world = world
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip_samples: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip_samples

    @property
    def per_rank(self) -> int:
        return math.ceil(self.n / self.world)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world
        order += order[: total - len(order)]  # pad so every rank gets as many samples
        mine = order[self.rank : total : self.world]
        for i in mine[self.skip :]:
            yield (i, self.epoch)
