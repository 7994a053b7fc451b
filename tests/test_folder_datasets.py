"""Datasets read from local folders: tiny files in the real formats, read by the real loading code."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_formats import write_celeba, write_cifar10, write_image, write_mnist, write_svhn
from PIL import Image

from mixframe import DataContext, MixframeError
from mixframe.kernel.config import Problems, structure
from mixframe_plugins.datasets import celeba, image_folder, torchvision_sets
from mixframe_plugins.datasets.celeba import CelebAConfig
from mixframe_plugins.datasets.image_folder import ImageFolderConfig
from mixframe_plugins.datasets.torchvision_sets import ChecksummedSetConfig, VisionSetConfig

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry "
    "Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def level_of(x: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> int:
    """The gray level (0..255) of a constant image tensor, after checking that it is constant."""
    low, high = value_range
    unit = (x - low) / (high - low)
    assert float(unit.max() - unit.min()) < 3 / 255, "a constant image should stay constant"
    return round(float(unit.mean()) * 255)


def read_split(split: torch.utils.data.Dataset, value_range: tuple[float, float] = (-1.0, 1.0)) -> list[tuple[int, torch.Tensor]]:
    return [(level_of(x, value_range), y) for x, y in (split[i] for i in range(len(split)))]


# ---------------------------------------------------------------- torchvision sets


def check_class_splits(bundle, data: dict[str, np.ndarray], shape: tuple[int, ...], val_size: int) -> None:
    """Shapes, ranges, labels following their images, and train/val disjoint and covering the official train set."""
    assert bundle.spec.shape == shape and bundle.spec.num_classes == 10 and bundle.label_kind == "class"
    x, y = bundle.train[0]
    assert x.shape == shape and x.dtype == torch.float32 and y.dtype == torch.int64 and y.shape == ()
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    label_of = dict(zip(data["train_levels"].tolist(), data["train_labels"].tolist()))
    train, val = read_split(bundle.train), read_split(bundle.val)
    assert len(val) == val_size and len(train) == len(label_of) - val_size
    assert all(int(y) == label_of[level] for level, y in train + val)
    train_levels, val_levels = {lv for lv, _ in train}, {lv for lv, _ in val}
    assert not train_levels & val_levels and train_levels | val_levels == set(label_of)
    test = read_split(bundle.test)
    assert [lv for lv, _ in test] == data["test_levels"].tolist()
    assert [int(y) for _, y in test] == data["test_labels"].tolist()


def test_mnist_reads_idx_files_resizes_to_32_and_holds_out_a_seeded_val_subset(tmp_path: Path) -> None:
    data = write_mnist(tmp_path / "mnist", n_train=12, n_test=4)
    bundle = torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path / "mnist"), val_size=3), DataContext())
    check_class_splits(bundle, data, (1, 32, 32), 3)
    again = torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path / "mnist"), val_size=3), DataContext())
    other = torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path / "mnist"), val_size=3, seed=1), DataContext())
    assert list(again.val.indices) == list(bundle.val.indices)
    assert list(other.val.indices) != list(bundle.val.indices)
    assert bundle.train.base is bundle.val.base, "train and val must share one copy of the pixels"


def test_kmnist_from_gz_files_under_mixframe_data_in_unit_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_mnist(tmp_path / "kmnist", folder="KMNIST", n_train=10, n_test=3, gz=True)
    monkeypatch.setenv("MIXFRAME_DATA", str(tmp_path))
    bundle = torchvision_sets.build_kmnist(VisionSetConfig(val_size=2, size=16, scale="unit"), DataContext())
    assert bundle.spec.shape == (1, 16, 16) and bundle.spec.value_range == (0.0, 1.0)
    x, _ = bundle.test[0]
    assert float(x.min()) >= 0.0 and level_of(x, (0.0, 1.0)) == data["test_levels"][0]
    assert [int(y) for _, y in read_split(bundle.test, (0.0, 1.0))] == data["test_labels"].tolist()


def test_mnist_missing_folder_says_which_files_to_put_where(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(MixframeError) as err:
        torchvision_sets.build_mnist(VisionSetConfig(root=str(root)), DataContext())
    message = str(err.value)
    assert message.startswith(f"MNIST not found under {root}: expected MNIST/raw/train-images-idx3-ubyte, MNIST/raw/train-labels-idx1-ubyte")
    assert "(or .gz) as written by torchvision.datasets.MNIST" in message
    assert message.endswith("put them there, set data.root, or set data.download: true")


def test_no_root_and_no_mixframe_data_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIXFRAME_DATA", raising=False)
    with pytest.raises(MixframeError, match=r"data.root is not set and the environment variable MIXFRAME_DATA is not set"):
        torchvision_sets.build_mnist(VisionSetConfig(), DataContext())


def test_val_size_larger_than_the_training_set_is_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=5, n_test=2)
    with pytest.raises(MixframeError, match=r"val_size=5 leaves no training examples \(the training set has 5\)"):
        torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path), val_size=5), DataContext())


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path: Path) -> None:
    data = write_svhn(tmp_path, n_train=12, n_test=4)
    bundle = torchvision_sets.build_svhn(ChecksummedSetConfig(root=str(tmp_path), val_size=4, verify_checksums=False), DataContext())
    check_class_splits(bundle, data, (3, 32, 32), 4)
    assert 0 in {int(y) for _, y in read_split(bundle.test)}


def test_svhn_checks_official_checksums_by_default(tmp_path: Path) -> None:
    write_svhn(tmp_path)
    with pytest.raises(MixframeError) as err:
        torchvision_sets.build_svhn(ChecksummedSetConfig(root=str(tmp_path), val_size=2), DataContext())
    assert f"SVHN: {tmp_path / 'train_32x32.mat'} does not match the official md5 checksum e26dedcc434d2e4c54c9b2d4a06d8373" in str(err.value)
    assert "set data.verify_checksums: false" in str(err.value)


def test_cifar10_reads_binary_batches(tmp_path: Path) -> None:
    data = write_cifar10(tmp_path, per_batch=3, n_test=4)
    bundle = torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=5, size=8, verify_checksums=False), DataContext())
    assert bundle.train.base.classes[3] == "cat"
    check_class_splits(bundle, data, (3, 8, 8), 5)
    x, _ = bundle.test[0]
    red, green, blue = (float(x[c].mean()) for c in range(3))
    assert red < green < blue, "each record holds the red, then the green, then the blue plane"
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").unlink()  # optional: the official names are used
    bundle = torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=5, size=8, verify_checksums=False), DataContext())
    assert bundle.train.base.classes[9] == "truck"


def test_cifar10_missing_batch_and_checksums_are_explained(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(MixframeError, match=r"CIFAR-10: .*data_batch_1.bin does not match the official md5 checksum 5dd7e06a"):
        torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2), DataContext())
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(MixframeError) as err:
        torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2, verify_checksums=False), DataContext())
    assert f"CIFAR-10 not found under {tmp_path}: expected cifar-10-batches-bin/data_batch_1.bin" in str(err.value)
    assert "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html" in str(err.value)
    assert "(missing: cifar-10-batches-bin/data_batch_3.bin)" in str(err.value)


def test_cifar10_damaged_binary_batches_are_explained(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    config = ChecksummedSetConfig(root=str(tmp_path), val_size=2, verify_checksums=False)
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(MixframeError, match=r"data_batch_2.bin is 9,214 bytes, not a whole number of 3073-byte records"):
        torchvision_sets.build_cifar10(config, DataContext())
    batch.write_bytes(bytes([7]) + bytes(3072) + bytes([12]) + bytes(3072))
    with pytest.raises(MixframeError, match=r"record 1 of .*data_batch_2.bin has the label byte 12, not a class 0..9"):
        torchvision_sets.build_cifar10(config, DataContext())
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(MixframeError, match=r"batches.meta.txt lists 2 class names, not 10"):
        torchvision_sets.build_cifar10(config, DataContext())


# ---------------------------------------------------------------- image folder


def make_folder(root: Path, n: int = 10) -> dict[str, tuple[int, int, int]]:
    """n png images in two subfolders and a CSV (filename, smiling in 0/1, hat in -1/1, tall); name -> (level, smiling, hat)."""
    truth, rows = {}, []
    for k in range(n):
        name = f"{'boots' if k % 2 else 'sandals'}/shoe_{k}.png"
        level, smiling, hat = 20 * k + 10, k % 2, int(k % 3 == 0)
        write_image(root / name, level)
        truth[name] = (level, smiling, hat)
        rows.append([name, smiling, 1 if hat else -1, 0])
    with open(root / "attrs.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "smiling", "hat", "tall"], *rows])
    return truth


def test_image_folder_with_attribute_subset_and_disjoint_seeded_splits(tmp_path: Path) -> None:
    truth = make_folder(tmp_path)
    config = ImageFolderConfig(root=str(tmp_path), size=8, attributes="attrs.csv", attribute_names=("hat", "smiling"),
                               val_fraction=0.2, test_fraction=0.2)
    bundle = image_folder.build(config, DataContext())
    assert bundle.label_kind == "attributes" and bundle.spec.attribute_names == ("hat", "smiling")
    assert bundle.spec.shape == (3, 8, 8) and (len(bundle.train), len(bundle.val), len(bundle.test)) == (6, 2, 2)
    by_level = {level: (hat, smiling) for level, smiling, hat in truth.values()}
    seen = []
    for split in (bundle.train, bundle.val, bundle.test):
        for level, y in read_split(split):
            assert y.dtype == torch.float32 and y.tolist() == [float(v) for v in by_level[level]]
            seen.append(level)
    assert sorted(seen) == sorted(by_level), "the splits must be disjoint and cover every image"
    x, _ = bundle.train[0]
    assert x.shape == (3, 8, 8) and -1.0 <= float(x.min()) <= float(x.max()) <= 1.0


def test_image_folder_without_csv_is_unlabelled_and_can_be_grayscale(tmp_path: Path) -> None:
    make_folder(tmp_path, n=5)
    bundle = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=6, channels=1, val_fraction=0.2, test_fraction=0.2,
                                                  labels="none"), DataContext())  # its two sub-folders would be classes with labels: auto
    assert bundle.label_kind == "none" and bundle.spec.attribute_names == () and bundle.spec.shape == (1, 6, 6)
    x, y = bundle.val[0]
    assert x.shape == (1, 6, 6) and y.shape == () and float(y) == 0.0
    (tmp_path / "._shoe_0.png").write_bytes(b"macOS metadata, not an image")
    assert len(image_folder.build(ImageFolderConfig(root=str(tmp_path), val_fraction=0.2, test_fraction=0.2), DataContext()).train) == 3


def test_image_folder_stretches_or_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 10))  # the left third is white
    img.save(tmp_path / "wide.png")
    stretched = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=9, val_fraction=0, test_fraction=0), DataContext()).train[0][0]
    cropped = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=9, keep_aspect=True, val_fraction=0, test_fraction=0), DataContext()).train[0][0]
    assert stretched.shape == cropped.shape == (3, 9, 9)
    assert float(stretched[:, :, :2].min()) > 0.9 and float(stretched[:, :, -3:].max()) < -0.9
    assert float(cropped[:, :, 1:].max()) < -0.9, "the center crop keeps the black middle third"


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MixframeError, match=r"image folder .*missing not found; put your images"):
        image_folder.build(ImageFolderConfig(root=str(tmp_path / "missing")), DataContext())
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixframeError, match=r"image folder .*empty holds no images \(.jpg, .jpeg, .png"):
        image_folder.build(ImageFolderConfig(root=str(tmp_path / "empty")), DataContext())
    make_folder(tmp_path / "shoes", n=4)
    root = str(tmp_path / "shoes")
    with pytest.raises(MixframeError) as err:
        image_folder.build(ImageFolderConfig(root=root, attributes="attrs.csv", attribute_names=("smilling",)), DataContext())
    assert "unknown attribute name(s) 'smilling' (did you mean 'smiling'?)" in str(err.value)
    assert str(err.value).endswith("available: smiling, hat, tall")
    with pytest.raises(MixframeError, match=r"has no filename column 'file' \(did you mean 'filename'\?\); its columns are: filename, smiling"):
        image_folder.build(ImageFolderConfig(root=root, attributes="attrs.csv", filename_column="file"), DataContext())
    with pytest.raises(MixframeError, match=r"attribute CSV .*nope.csv not found"):
        image_folder.build(ImageFolderConfig(root=root, attributes="nope.csv"), DataContext())
    write_image(tmp_path / "shoes" / "extra.png", 5)
    with pytest.raises(MixframeError, match=r"1 image\(s\) under .* have no row in .*attrs.csv \(first: extra.png\)"):
        image_folder.build(ImageFolderConfig(root=root, attributes="attrs.csv"), DataContext())
    (tmp_path / "shoes" / "extra.png").unlink()
    rows = (tmp_path / "shoes" / "attrs.csv").read_text().splitlines()
    (tmp_path / "shoes" / "bad.csv").write_text("\n".join([rows[0], rows[1].replace(",1,", ",2,", 1), *rows[2:]]))
    with pytest.raises(MixframeError, match=r"bad.csv line 2, column 'hat': '2' is not a binary value; use 0/1 or -1/1"):
        image_folder.build(ImageFolderConfig(root=root, attributes="bad.csv"), DataContext())
    (tmp_path / "shoes" / "boots" / "shoe_1.png").unlink()
    with pytest.raises(MixframeError, match=r"1 file\(s\) named in .*attrs.csv are not images under .* \(first: boots/shoe_1.png\)"):
        image_folder.build(ImageFolderConfig(root=root, attributes="attrs.csv"), DataContext())


# ---------------------------------------------------------------- CelebA


def make_celeba(root: Path, n: int = 6) -> dict[str, list[int]]:
    rng = np.random.default_rng(0)
    values = {a: [int(v) for v in rng.choice([-1, 1], size=n)] for a in CELEBA_ATTRIBUTES}
    write_celeba(root, values, partition=[0, 0, 0, 1, 2, 2][:n])
    return values


def test_celeba_reads_text_files_with_official_splits_and_default_attributes(tmp_path: Path) -> None:
    values = make_celeba(tmp_path)
    bundle = celeba.build(CelebAConfig(root=str(tmp_path), crop=16, size=8), DataContext())
    assert bundle.label_kind == "attributes" and bundle.spec.attribute_names == ("Male", "Smiling", "Eyeglasses")
    assert bundle.spec.shape == (3, 8, 8) and (len(bundle.train), len(bundle.val), len(bundle.test)) == (3, 1, 2)
    expected = {40 * k + 20: [float(values[a][k] == 1) for a in ("Male", "Smiling", "Eyeglasses")] for k in range(6)}
    got = {}
    for split in (bundle.train, bundle.val, bundle.test):
        for level, y in read_split(split):
            match = min(expected, key=lambda lv: abs(lv - level))  # jpeg may move a level by one or two
            assert abs(match - level) <= 3 and y.dtype == torch.float32
            got[match] = y.tolist()
    assert got == expected
    assert {round(float(bundle.test[i][0].mean() * 127.5 + 127.5)) // 40 for i in range(2)} == {4, 5}, "test = partition 2"


def test_celeba_attribute_subset_in_the_order_asked(tmp_path: Path) -> None:
    values = make_celeba(tmp_path)
    bundle = celeba.build(CelebAConfig(root=str(tmp_path), crop=None, size=4, attributes=("Young", "5_o_Clock_Shadow"), scale="unit"), DataContext())
    assert bundle.spec.attribute_names == ("Young", "5_o_Clock_Shadow") and bundle.spec.value_range == (0.0, 1.0)
    x, y = bundle.val[0]  # image 4 (index 3) is the only val image
    assert x.shape == (3, 4, 4) and float(x.min()) >= 0.0
    assert y.tolist() == [float(values["Young"][3] == 1), float(values["5_o_Clock_Shadow"][3] == 1)]
    all_40 = celeba.build(CelebAConfig(root=str(tmp_path), size=4, attributes=()), DataContext())
    assert all_40.spec.attribute_names == tuple(CELEBA_ATTRIBUTES) and all_40.train[0][1].shape == (40,)


def test_celeba_unknown_attribute_lists_the_40_choices_and_a_suggestion(tmp_path: Path) -> None:
    make_celeba(tmp_path)
    with pytest.raises(MixframeError) as err:
        celeba.build(CelebAConfig(root=str(tmp_path), attributes=("Male", "Smilling")), DataContext())
    message = str(err.value)
    assert "unknown attribute name(s) 'Smilling' (did you mean 'Smiling'?) in data.attributes" in message
    assert message.endswith("available: " + ", ".join(CELEBA_ATTRIBUTES))


def test_celeba_missing_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(MixframeError) as err:
        celeba.build(CelebAConfig(root=str(tmp_path / "celeba")), DataContext())
    assert str(err.value) == (
        f"CelebA not found: {tmp_path / 'celeba'} does not exist; expected img_align_celeba/ (the aligned jpg faces), "
        "list_attr_celeba.txt and list_eval_partition.txt from the official CelebA release; put them there or set data.root"
    )
    make_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(MixframeError, match=r"1 image\(s\) listed in list_attr_celeba.txt are missing from .*img_align_celeba \(first: 000002.jpg\)"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(MixframeError, match=r"CelebA file .*list_eval_partition.txt not found; expected img_align_celeba/"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())


# ---------------------------------------------------------------- the hooks and the recipe checker


def test_hooks_declare_the_six_datasets_and_configs_come_from_recipe_values(tmp_path: Path) -> None:
    components = {c.name: c for m in (torchvision_sets, image_folder, celeba) for c in m.mixframe_components()}
    assert sorted(components) == ["celeba", "cifar10", "image_folder", "kmnist", "mnist", "svhn"]
    assert all(c.kind == "dataset" for c in components.values())
    problems = Problems()
    config = structure(components["celeba"].config, {"root": str(tmp_path), "attributes": ["Bald"], "crop": None}, "data", problems)
    assert not problems and config.attributes == ("Bald",) and config.crop is None
    structure(components["svhn"].config, {"download": "yes", "scale": "sgned"}, "data", problems)
    assert [path for path, _ in problems.items] == ["data.scale", "data.download"]
