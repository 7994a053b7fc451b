"""Real face photographs that ship with scikit-image (no download): a small offline stand-in for CelebA.

``skimage.data.lfw_subset()`` returns 200 grayscale 25x25 crops from Labeled Faces in the Wild
(Huang et al.): the first 100 are faces, the other 100 are background patches with no face, used by
scikit-image's face-detection example. This dataset keeps the 100 faces only. That is small: it is
enough to train the AMR conv network on a CPU in minutes and to draw Figure 9/10/13-style
interpolations between real faces, not to reproduce 64 px CelebA. The file lives inside the
scikit-image wheel (``skimage/data/lfw_subset.npy``, 1 MB), so nothing is fetched at run time.

The faces are upsampled from 25 px to ``size`` (16 or 32) with antialiased bilinear interpolation
and scaled to [-1, 1] ("signed") or [0, 1] ("unit"); one channel; no labels (``y`` = 0). The split
is drawn with ``seed``: ``test`` and ``val`` faces, the rest for training. ``flip`` adds the mirror
image of every training face to the training split (faces are nearly symmetric; the held-out faces
and their mirrors never enter training).
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, param, positive

FACES = 100
"""The first 100 of lfw_subset's 200 crops are faces; the rest are background patches."""


@attrs.frozen(kw_only=True)
class FacesConfig:
    size: Literal[16, 32] = param(32, help="image side in pixels (the 25x25 originals are resized)")
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: signed = [-1, 1], unit = [0, 1] (for a BCE reconstruction)")
    val: int = param(12, help="faces held out for validation", validator=positive)
    test: int = param(16, help="faces held out for testing (the interpolation pairs come from here)", validator=positive)
    flip: bool = param(True, help="add the mirror image of every training face to the training split")
    seed: int = param(0, help="fixes the train/val/test split")


def load_faces() -> np.ndarray:
    """The 100 face crops, float (100, 25, 25) in [0, 1], read from the file inside the scikit-image package."""
    try:
        from skimage import data
    except ImportError:
        raise MixframeError("the faces dataset reads the face photographs that ship with scikit-image; "
                            "install it: pip install scikit-image") from None
    try:
        images = np.asarray(data.lfw_subset())
    except (OSError, ModuleNotFoundError, ConnectionError, KeyError, ValueError) as err:
        raise MixframeError(f"scikit-image's lfw_subset could not be read from its installed files ({err}); "
                            "reinstall scikit-image: pip install --force-reinstall scikit-image") from None
    if images.shape != (2 * FACES, 25, 25):
        raise MixframeError(f"scikit-image's lfw_subset has shape {images.shape}, not the (200, 25, 25) this dataset knows; "
                            "install a scikit-image release that ships it unchanged (0.19 or later)")
    images = images[:FACES].astype(np.float32)
    return images / 255.0 if images.max() > 1.0 else images


def build(config: FacesConfig, context: DataContext) -> DataBundle:
    """The 100 faces resized and scaled, split with ``seed``; mirrored training faces added when ``flip``."""
    if config.val + config.test > FACES - 2:
        raise MixframeError(f"data.val + data.test = {config.val + config.test} leaves fewer than 2 of the {FACES} faces for training; "
                            "lower them")
    faces = torch.from_numpy(load_faces()).unsqueeze(1)
    faces = F.interpolate(faces, size=(config.size, config.size), mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)
    low, high = (-1.0, 1.0) if config.scale == "signed" else (0.0, 1.0)
    faces = low + (high - low) * faces
    order = torch.randperm(FACES, generator=torch.Generator().manual_seed(config.seed))
    test_idx, val_idx = order[:config.test].sort().values, order[config.test:config.test + config.val].sort().values
    train_idx = order[config.test + config.val:].sort().values
    train = faces[train_idx]
    if config.flip:
        train = torch.cat([train, train.flip(-1)])

    def part(x: torch.Tensor) -> TensorDataset:
        return TensorDataset(x, torch.zeros(len(x)))

    spec = DataSpec(shape=(1, config.size, config.size), value_range=(low, high))
    return DataBundle(spec=spec, train=part(train), val=part(faces[val_idx]), test=part(faces[test_idx]), label_kind="none")


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    return [Component(kind="dataset", name="faces", implementation=build, config=FacesConfig, provides=("image_data", unit),
                      summary="100 real 25x25 grayscale faces shipped with scikit-image (LFW subset; offline; small) "
                              "at 16/32 px, mirrored training copies; a CPU stand-in for CelebA")]
