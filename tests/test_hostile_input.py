"""Hostile files handed to mixframe: each class is refused quickly with a message, never a traceback.

Recipes go through ``mixframe recipe check FILE`` (exit 2, a message naming the problem); the
guarded readers of :mod:`mixframe.kernel.files` and the folder datasets are tested directly. Every test
runs under an alarm, so a read that blocks (a FIFO) or runs away fails instead of hanging.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fixtures_formats import write_bomb_png, write_celeba, write_cifar10, write_cifar10_python, write_image, write_mnist

from mixframe import DataContext, MixframeError
from mixframe.kernel.files import (
    UserFileError,
    load_user_json,
    load_user_yaml,
    open_user_image,
    parse_user_yaml,
    read_user_bytes,
    read_user_text,
)
from mixframe.kernel.recipe import RecipeError, load_recipe
from mixframe_plugins.datasets import celeba, image_folder, torchvision_sets
from mixframe_plugins.datasets.celeba import CelebAConfig
from mixframe_plugins.datasets.image_folder import ImageFolderConfig
from mixframe_plugins.datasets.torchvision_sets import ChecksummedSetConfig, VisionSetConfig

SECONDS = 20  # far more than any refusal takes; a blocking read fails the test instead of hanging the suite


@pytest.fixture(autouse=True)
def alarm() -> Iterator[None]:
    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {SECONDS} s: a hostile input blocks or runs away")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


VALID = "schema: 1\ndata: {kind: digits}\nencoder: {kind: conv}\ndecoder: {kind: conv}\n"


def billion_laughs() -> str:
    """Nine levels of ten aliases: 10**9 strings once expanded, 600 bytes on disk."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "description: bomb\nseed: 0\ndata:\n  kind: digits\n  junk:\n" + "".join(f"    {line}\n" for line in lines)


def write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return make


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def directory(tmp_path: Path) -> Path:
    (tmp_path / "folder.yaml").mkdir()
    return tmp_path / "folder.yaml"


def huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of NUL bytes without writing them
    return path


PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00\x90\x91h6"

# (id, make the file, fragments the message must contain)
HOSTILE: list[tuple[str, Callable[[Path], Path], list[str]]] = [
    ("alias_bomb", write("bomb.yaml", billion_laughs()), ["holds more than 20,000 values", "alias"]),
    ("recursive_alias", write("loop.yaml", VALID + "mixer: &m {kind: mixup, x: [*m]}\n"), ["refers to the value that contains it"]),
    ("deep_flow_nesting", write("deep.yaml", "schema: 1\ndata: " + "[\n" * 50_000 + "]\n" * 50_000), ["nested more than 64 levels"]),
    ("deep_block_nesting", write("deepb.yaml", "schema: 1\ndata:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(500))),
     ["nested more than 64 levels"]),
    ("oversized", huge_file, ["52,428,800 bytes, over the limit of 1,048,576"]),
    ("latin1_comment", write("latin1.yaml", "# r\xe9sum\xe9 of the run\n".encode("latin-1") + VALID.encode()),
     ["is not UTF-8 text", "offset 3 (line 1)", "must be UTF-8 text"]),
    ("png_as_recipe", write("image.yaml", PNG_BYTES), ["is not UTF-8 text", "offset 0", "looks like a PNG image"]),
    ("pickle_as_recipe", write("data.yaml", pickle.dumps({"a": 1})), ["is not UTF-8 text", "Python pickle"]),
    ("utf16_without_bom", write("u16.yaml", VALID.encode("utf-16-le")), ["NUL character", "UTF-16 without a byte-order mark"]),
    ("huge_int", write("int.yaml", VALID + "seed: " + "9" * 9_000 + "\n"), ["seed: line 5, column 7", "9,000 digits, more than the 100"]),
    ("huge_int_tagged", write("int2.yaml", VALID + 'seed: !!int "' + "12345\\\n" * 20_000 + '"\n'), ["seed:", "100,000 digits"]),
    ("float_overflow", write("inf.yaml", VALID + "train: {lr: 1e400, betas: [0.5, -2.0e999]}\n"),
     ["train.lr: line 5", "1e400 is too large for a float", "train.betas[1]:"]),
    ("nul_bytes", write("nul.yaml", VALID + "description: a\x00b\n"), ["NUL character (line 5, column 15)"]),
    ("control_character", write("bell.yaml", VALID + "description: \x07\n"), ["line 5, column 14", "U+0007 is not allowed"]),
    ("very_long_line", write("long.yaml", VALID + "description: " + "x" * 200_000 + "\n"), ["line 5: is 200,013 characters long"]),
    ("top_level_list", write("list.yaml", "- schema: 1\n- data: {kind: digits}\n"), ["(top level)", "must be a mapping", "got list"]),
    ("top_level_scalar", write("scalar.yaml", "just some words\n"), ["(top level)", "must be a mapping", "got str"]),
    ("bad_timestamp", write("date.yaml", VALID + "description: 2024-13-45\n"), ["description: line 5", "not a valid timestamp"]),
    ("bad_tagged_int", write("tagint.yaml", VALID + "seed: !!int twelve\n"), ["seed: line 5", "'twelve' is not a valid int"]),
    ("custom_tag", write("tag.yaml", VALID + "seed: !env SEED\n"), ["custom tags (!name) are refused"]),
    ("python_tag", write("py.yaml", VALID + "seed: !!python/object/apply:os.getpid []\n"), ["python tags are refused"]),
    ("syntax_error", write("syntax.yaml", "schema: 1\ndata: [1, 2\nencoder: 3\n"), ["line 3, column 8", "expected ',' or ']'"]),
    ("duplicate_anchor", write("anchor.yaml", VALID + "seed: &a 1\ndescription: &a x\n"), ["found duplicate anchor 'a'", "must be unique"]),
    ("two_documents", write("two.yaml", VALID + "---\nschema: 1\n"), ["expected a single document"]),
    ("duplicate_key", write("dup.yaml", VALID + "seed: 3\nseed: 4\n"), ["seed: line 6: written twice (first on line 5)"]),
    ("extends_not_a_path", write("ext.yaml", "schema: 1\nextends: 5\n"), ["extends: must be a recipe file or a list of them", "got 5"]),
    ("extends_a_device", write("extdev.yaml", "schema: 1\nextends: /dev/zero\n"), ["is a character device"]),
    ("not_a_number", write("nan.yaml", VALID + "train: {lr: .nan}\n"), ["train.lr: must be a finite number, got nan"]),
    ("seed_out_of_range", write("seed.yaml", VALID + "seed: 99999999999999999999\n"), ["seed: must be an integer from 0 to 2**63 - 1"]),
    ("fifo", fifo, ["is a named pipe (FIFO), not a regular file"]),
    ("directory", directory, ["is a directory, not a regular file"]),
    ("missing", lambda tmp_path: tmp_path / "nowhere.yaml", ["not found"]),
]


@pytest.mark.parametrize(("make", "fragments"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_recipe_is_refused_by_recipe_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   make: Callable[[Path], Path], fragments: list[str]) -> None:
    from mixframe.cli.main import main

    path = make(tmp_path)
    start = time.monotonic()
    code = main(["recipe", "check", str(path)])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and str(path) in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert elapsed < 10, f"refusing took {elapsed:.1f} s"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_as_a_recipe_is_refused_without_reading_it(capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.cli.main import main

    assert main(["recipe", "check", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert "recipe /dev/zero" in err and "is a character device (like /dev/zero), not a regular file" in err


def test_recipe_refusals_are_recipe_errors_with_the_path(tmp_path: Path) -> None:
    path = write("bomb.yaml", billion_laughs())(tmp_path)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert err.value.source == str(path) and len(err.value.problems) == 1
    base = write("base.yaml", "# caf\xe9\n".encode("latin-1"))(tmp_path)
    child = write("child.yaml", "extends: base.yaml\n")(tmp_path)
    with pytest.raises(RecipeError, match=r"recipe .*child.yaml has 1 problem:\n  extends base.yaml: .*is not UTF-8 text"):
        load_recipe(child)
    assert base.exists()


def test_byte_order_marks_are_accepted(tmp_path: Path) -> None:
    for name, data in [("utf8bom.yaml", b"\xef\xbb\xbf" + VALID.encode()), ("utf16.yaml", VALID.encode("utf-16")),
                       ("utf16be.yaml", b"\xfe\xff" + ("# caf\xe9\n" + VALID).encode("utf-16-be"))]:
        recipe = load_recipe(write(name, data)(tmp_path))
        assert recipe.data.name == "digits" and recipe.encoder.name == "conv"


def test_plain_recipes_keep_working(tmp_path: Path) -> None:
    """Anchors, merge keys and YAML 1.2 floats (1e-4) stay valid; .inf stays expressible."""
    text = VALID + "train: &t {lr: 1e-4, epochs: 2}\nreconstruction: {weight: 2.5e0}\n"
    recipe = load_recipe(write("ok.yaml", text)(tmp_path))
    assert recipe.train.lr == 1e-4 and recipe.reconstruction.weight == 2.5
    data = parse_user_yaml("a: &a {x: 1}\nb: {<<: *a, y: .inf}\nc: [*a, *a]\n", source="s", what="recipe")
    assert data == {"a": {"x": 1}, "b": {"x": 1, "y": float("inf")}, "c": [{"x": 1}, {"x": 1}]}


def test_guarded_readers_directly(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"\xef\xbb\xbfhello\r\nworld\n")
    assert read_user_text(text, what="note", max_bytes=100) == "hello\r\nworld\n"
    with pytest.raises(UserFileError, match=r"note .*notes.txt is 16 bytes, over the limit of 10 bytes for a note"):
        read_user_bytes(text, what="note", max_bytes=10)
    big = tmp_path / "run.json"
    big.write_text('{"a": [1, 2.5, NaN], "b": {"c": null}}')
    assert load_user_json(big, what="run record", max_bytes=1000)["b"] == {"c": None}
    for content, fragment in [('{"a": 1e400}', "1e400 is too large for a float"), ('{"a": ' + "7" * 5000 + "}", "5,000 digits"),
                              ('{"a": [1, 2}', "line 1, column 12: is not valid JSON"),
                              ("[" * 100 + "]" * 100, "nested more than 64 levels"), ("[" * 100_000 + "]" * 100_000, "nested")]:
        big.write_text(content)
        with pytest.raises(UserFileError, match=r"run record .*run.json") as err:
            load_user_json(big, what="run record", max_bytes=10**6)
        assert fragment in str(err.value)
    with pytest.raises(UserFileError, match="values are nested more than 3 levels deep"):
        parse_user_yaml("a: {b: {c: {d: 1}}}", source="s", what="recipe", max_depth=3)
    with pytest.raises(UserFileError, match=r"recipe .*notes.txt has 1 problem"):
        load_user_yaml(text, what="recipe", max_line_chars=3)


# ---------------------------------------------------------------- datasets


class Marker:
    """Unpickling this creates the file ``path`` (what a crafted batches.meta could do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def test_cifar10_pickle_layout_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write_cifar10_python(tmp_path, meta_payload=Marker(marker))
    pickle.loads(pickle.dumps(Marker(tmp_path / "control")))
    assert (tmp_path / "control").exists(), "the crafted pickle works when it is unpickled"
    for verify in (False, True):
        with pytest.raises(MixframeError) as err:
            torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2, verify_checksums=verify), DataContext())
        message = str(err.value)
        assert "is the python version (cifar-10-batches-py/, pickled batches), which mixframe does not read" in message
        assert "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html" in message
        assert f"{tmp_path / 'cifar-10-batches-bin' / 'data_batch_1.bin'} exists" in message
    assert not marker.exists(), "batches.meta was unpickled"


def test_cifar10_binary_beside_a_crafted_pickle_folder_reads_only_the_binary(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write_cifar10_python(tmp_path, meta_payload=Marker(marker))
    data = write_cifar10(tmp_path, per_batch=2, n_test=3)
    bundle = torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2, size=8, verify_checksums=False), DataContext())
    assert len(bundle.train) + len(bundle.val) == 10 and len(bundle.test) == 3
    assert [int(bundle.test[i][1]) for i in range(3)] == data["test_labels"].tolist()
    assert not marker.exists()


def test_cifar10_batch_that_is_a_fifo_or_too_big_is_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    with open(batch, "r+b") as f:
        f.truncate(3073 * 60_001)
    with pytest.raises(MixframeError, match=r"CIFAR-10 batch .*test_batch.bin is 184,383,073 bytes, over the limit"):
        torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2, verify_checksums=False), DataContext())
    batch.unlink()
    os.mkfifo(batch)
    with pytest.raises(MixframeError, match=r"CIFAR-10 not found under .*\(missing: cifar-10-batches-bin/test_batch.bin\)"):
        torchvision_sets.build_cifar10(ChecksummedSetConfig(root=str(tmp_path), val_size=2, verify_checksums=False), DataContext())


def test_decompression_bomb_png_in_an_image_folder_names_file_size_and_limit(tmp_path: Path) -> None:
    for k in range(4):
        write_image(tmp_path / f"ok_{k}.png", 10 * k)
    bomb = tmp_path / "bomb.png"
    write_bomb_png(bomb, 15000, 15000)
    assert bomb.stat().st_size < 40_000
    bundle = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=8, val_fraction=0, test_fraction=0), DataContext())
    index = bundle.train.paths.index(bomb)
    with pytest.raises(MixframeError) as err:
        bundle.train[index]
    message = str(err.value)
    assert str(bomb) in message and "15000x15000 pixels (225,000,000)" in message and "limit of 40,000,000 pixels" in message
    assert "Traceback" not in message
    write_bomb_png(bomb, 7000, 7000)  # under PIL's own limit: refused by ours, from the header, before decoding
    with pytest.raises(MixframeError, match=r"is 7000x7000 pixels \(49,000,000\), over the limit of 40,000,000"):
        bundle.train[index]


def test_broken_images_name_the_file(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", 10, size=(40, 40))
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes()[:70])  # truncated
    (tmp_path / "c.jpg").write_bytes(b"this is not an image at all")
    (tmp_path / "d.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # EPS would run Ghostscript
    bundle = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=8, val_fraction=0, test_fraction=0), DataContext())
    assert bundle.train[0][0].shape == (3, 8, 8)
    expected = {"b.png": "cannot be decoded", "c.jpg": "is not an image in a format read here", "d.png": "is not an image in a format"}
    for path in bundle.train.paths[1:]:
        with pytest.raises(MixframeError) as err:
            bundle.train[bundle.train.paths.index(path)]
        assert f"image {path} {expected[path.name]}" in str(err.value)
    with pytest.raises(UserFileError, match="is a named pipe"):
        os.mkfifo(tmp_path / "e.png")
        open_user_image(tmp_path / "e.png", max_pixels=100)


def test_celeba_image_over_its_limit_and_text_files_through_the_guarded_path(tmp_path: Path) -> None:
    attributes = {name: [1, -1] for name in ("Male", "Smiling", "Eyeglasses")}
    write_celeba(tmp_path, attributes, partition=[0, 0])
    write_bomb_png(tmp_path / "img_align_celeba" / "000002.jpg", 3000, 3000)  # a PNG under a .jpg name is still read as PNG
    bundle = celeba.build(CelebAConfig(root=str(tmp_path), size=8, crop=None), DataContext())
    with pytest.raises(MixframeError, match=r"000002.jpg is 3000x3000 pixels \(9,000,000\), over the limit of 4,000,000"):
        bundle.train[1]
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_bytes(attr.read_bytes().replace(b"Male", b"M\xe4nnlich"))
    with pytest.raises(MixframeError, match=r"CelebA file .*list_attr_celeba.txt is not UTF-8 text: the byte 0xe4 at offset 3 \(line 2\)"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())
    attr.write_text("\u00b2\nMale Smiling Eyeglasses\n")  # isdigit() but not a number int() reads
    with pytest.raises(MixframeError, match="line 1 must be the image count"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())
    attr.unlink()
    os.mkfifo(attr)
    with pytest.raises(MixframeError, match=r"CelebA file .*list_attr_celeba.txt is a named pipe \(FIFO\)"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())


def test_attribute_csv_through_the_guarded_path(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", 10)
    write_image(tmp_path / "b.png", 20)
    csv_path = tmp_path / "attrs.csv"
    csv_path.write_bytes("filename,sm\xefling\na.png,1\nb.png,0\n".encode("latin-1"))
    config = ImageFolderConfig(root=str(tmp_path), attributes="attrs.csv", val_fraction=0, test_fraction=0)
    with pytest.raises(MixframeError, match=r"attribute CSV .*attrs.csv is not UTF-8 text: the byte 0xef at offset 11 \(line 1\)"):
        image_folder.build(config, DataContext())
    csv_path.write_text("filename,smiling\n" + '"a.png' + "x" * 200_000 + '",1\n')
    with pytest.raises(MixframeError, match=r"attribute CSV .*attrs.csv line 2: field larger than field limit"):
        image_folder.build(config, DataContext())
    csv_path.write_bytes("filename,smiling\na.png,1\nb.png,0\n".encode("utf-16"))
    assert image_folder.build(config, DataContext()).label_kind == "attributes"


def test_mnist_gzip_bomb_and_legacy_pickles_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path, n_train=6, n_test=2)
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir()
    for name in ("training.pt", "test.pt"):  # torchvision would torch.load these instead of the idx files
        (processed / name).write_bytes(b"not a torch file")
    bundle = torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path), val_size=2), DataContext())
    assert len(bundle.train) == 4
    monkeypatch.setattr(torchvision_sets, "IDX_MAX_BYTES", 10_000)
    raw = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw.unlink()
    import gzip
    with gzip.open(f"{raw}.gz", "wb") as f:
        f.write(bytes(50_000))
    with pytest.raises(MixframeError, match=r"t10k-labels-idx1-ubyte.gz unpacks to more than 10,000 bytes"):
        torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path), val_size=2), DataContext())
    assert not raw.exists() and not list(raw.parent.glob("*.part")), "a partly unpacked file must not stay behind"


def test_mnist_labels_outside_0_to_9_are_refused(tmp_path: Path) -> None:
    from fixtures_formats import write_idx

    write_mnist(tmp_path, n_train=6, n_test=2)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.array([3, 200], dtype=np.uint8))
    with pytest.raises(MixframeError, match=r"MNIST: the test label of example 1 under .* is 200, not a class 0..9"):
        torchvision_sets.build_mnist(VisionSetConfig(root=str(tmp_path), val_size=2), DataContext())


def test_svhn_mat_file_with_other_variables_is_refused_from_its_headers(tmp_path: Path) -> None:
    import scipy.io
    from fixtures_formats import write_svhn

    write_svhn(tmp_path, n_train=4, n_test=2)
    scipy.io.savemat(str(tmp_path / "test_32x32.mat"), {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8),
                                                        "junk": np.zeros((1000, 1000), np.uint8)}, do_compression=True)
    with pytest.raises(MixframeError, match=r"SVHN: .*test_32x32.mat holds X \(32, 32, 3, 2\), y \(2, 1\), junk \(1000, 1000\)"):
        torchvision_sets.build_svhn(ChecksummedSetConfig(root=str(tmp_path), val_size=1, verify_checksums=False), DataContext())
    (tmp_path / "test_32x32.mat").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(MixframeError, match=r"SVHN: cannot read .*test_32x32.mat as a MATLAB .mat file"):
        torchvision_sets.build_svhn(ChecksummedSetConfig(root=str(tmp_path), val_size=1, verify_checksums=False), DataContext())


# -- limits where work grows with the input -------------------------------------------------------------------------------
def test_a_long_thin_png_that_keep_aspect_would_blow_up_is_refused_before_resizing(tmp_path: Path) -> None:
    for k in range(3):
        write_image(tmp_path / f"ok_{k}.png", 10 * k, size=(16, 16))
    thin = tmp_path / "thin.png"
    write_bomb_png(thin, 1, 4_000_000)  # 4 million pixels decode fine; kept in aspect at 64 px they would be 64x256,000,000
    assert thin.stat().st_size < 16_000
    bundle = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=64, keep_aspect=True, val_fraction=0, test_fraction=0), DataContext())
    with pytest.raises(MixframeError) as err:
        bundle.train[bundle.train.paths.index(thin)]
    message = str(err.value)
    assert str(thin) in message and "1x4000000 pixels" in message and "64x256000000 pixels" in message and "over the limit of 40,000,000" in message
    assert bundle.train[bundle.train.paths.index(tmp_path / "ok_1.png")][0].shape == (3, 64, 64)  # square ones still load


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    from PIL import Image

    ramp = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # 16-bit grayscale
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    bundle = image_folder.build(ImageFolderConfig(root=str(tmp_path), size=16, channels=1, scale="unit", val_fraction=0,
                                                  test_fraction=0), DataContext())
    x = bundle.train[0][0]
    assert x.shape == (1, 16, 16)
    assert float((x > 0.99).float().mean()) < 0.02  # clipped, 99% of the pixels would be white
    assert abs(float(x.mean()) - 0.5) < 0.01 and float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_a_floating_point_image_is_refused_with_a_message() -> None:
    from PIL import Image

    from mixframe.kernel.files import convert_image

    with pytest.raises(UserFileError, match=r"b.tif is a floating-point image \(mode F\), whose value range is unknown"):
        convert_image(Image.fromarray(np.full((8, 8), 3.5, dtype=np.float32)), "L", "b.tif")
    wide = Image.fromarray(np.full((8, 8), 70000, dtype=np.int32))
    with pytest.raises(UserFileError, match="values from 70000 to 70000, outside 0..65535"):
        convert_image(wide, "RGB", "c.tif")


def test_an_attribute_csv_listing_a_picture_twice_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", 10)
    write_image(tmp_path / "b.png", 20)
    (tmp_path / "attrs.csv").write_text("filename,smiling\na.png,1\nb.png,0\n./a.png,0\n")
    config = ImageFolderConfig(root=str(tmp_path), attributes="attrs.csv", val_fraction=0, test_fraction=0)
    with pytest.raises(MixframeError, match=r"attrs.csv line 4: ./a.png names the image a.png again \(first on line 2\)"):
        image_folder.build(config, DataContext())


def test_celeba_listing_an_image_twice_is_refused(tmp_path: Path) -> None:
    write_celeba(tmp_path, {name: [1, -1] for name in ("Male", "Smiling", "Eyeglasses")}, partition=[0, 0])
    attr = tmp_path / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join([lines[0], lines[1], lines[2], lines[2].replace(" 1", " -1")]) + "\n")
    with pytest.raises(MixframeError, match=r"line 4: 000001.jpg is listed again \(first on line 3\)"):
        celeba.build(CelebAConfig(root=str(tmp_path)), DataContext())


def test_a_sweep_plan_is_sized_before_it_is_built(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.cli.main import main

    recipe = Path(__file__).resolve().parent.parent / "recipes" / "spiral_amr.yaml"
    start = time.monotonic()
    grid = [a for k in range(6) for a in ("--grid", f"data.n_train={','.join(str(256 + i) for i in range(10))}" if k == 0
                                          else f"seed={','.join(str(10 * k + i) for i in range(10))}")]
    for args in (["--seeds", "1000000000"], grid):
        code = main(["sweep", str(recipe), "--out", str(tmp_path), *args])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert "more than --max-runs 1,000" in err and "raise --max-runs if you mean it" in err
    assert time.monotonic() - start < 10
    assert not any(tmp_path.iterdir())  # nothing was created
    code = main(["sweep", str(recipe), "--out", str(tmp_path), "--seeds", "3", "--max-runs", "2"])
    assert code == 2 and "plans 3 runs (3 seeds), more than --max-runs 2" in capsys.readouterr().err
