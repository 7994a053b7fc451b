"""The abstract component interfaces that plugins implement.

Every component class is built the same way: ``Component(config, context)``, where ``config`` is
an instance of the component's attrs config class (validated from the recipe) and ``context`` is a
:class:`BuildContext` describing the data and the code shape. The core knows nothing about any
particular method; it only composes these interfaces.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from mixframe.errors import MixframeError


@attrs.frozen(kw_only=True)
class ImagePreprocess:
    """How a dataset turns a picture into an example: recorded with the run (data.json) so that
    ``Run.to_input`` prepares your own pictures exactly as the training pictures were.

    ``crop`` center-crops first (CelebA's face crop); ``keep_aspect`` resizes the shorter side to ``size``
    and center-crops the longer one, otherwise the picture is stretched to a square; then pixels are
    scaled from [0, 1] to ``value_range``. ``channels`` (1 or 3) converts the picture first when set.
    """

    size: int
    value_range: tuple[float, float] = (-1.0, 1.0)
    keep_aspect: bool = False
    crop: int | None = None
    channels: int | None = None

    def resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) a picture of ``size`` has after the crop and resize, before the final square crop: with
        ``keep_aspect`` an 8 KB PNG of 1x4,000,000 pixels would become 64x256,000,000, so limits look at this."""
        width, height = (self.crop, self.crop) if self.crop is not None else size
        if self.keep_aspect and min(width, height) > 0:
            scale = self.size / min(width, height)
            return max(1, round(width * scale)), max(1, round(height * scale))
        return self.size, self.size

    def check_size(self, size: tuple[int, int], max_pixels: int) -> None:
        """Refuses (ValueError) a picture whose resized size would be over ``max_pixels``; called with the size
        read from the file's header, before it is decoded."""
        width, height = self.resized_size(size)
        if width * height > max_pixels:
            raise ValueError(f"resized to keep its aspect it would be {width}x{height} pixels ({width * height:,}), over the limit "
                             f"of {max_pixels:,}; crop it nearer to a square (or set keep_aspect: false)")

    def __call__(self, image: Any) -> Tensor:
        """A PIL image -> a float ``(C, size, size)`` tensor in ``value_range``."""
        from torchvision.transforms import functional as F

        from mixframe.kernel.files import convert_image

        if self.channels is not None:  # 16-bit pictures scaled to 8 bits, not clipped
            image = convert_image(image, "RGB" if self.channels == 3 else "L", getattr(image, "filename", "") or "image")
        if self.crop is not None:
            image = F.center_crop(image, [self.crop, self.crop])
        if self.keep_aspect:
            image = F.center_crop(F.resize(image, self.size), [self.size, self.size])
        else:
            image = F.resize(image, [self.size, self.size])
        low, high = self.value_range
        tensor: Tensor = F.to_tensor(image) * (high - low) + low
        return tensor


@attrs.frozen(kw_only=True)
class DataSpec:
    """What the model needs to know about a dataset, without touching its files.

    ``shape`` is one example's shape: ``(C, H, W)`` for images, ``(2,)`` for 2-D points.
    ``value_range`` is the range examples are scaled to (the decoder's output should match it).
    ``num_classes`` is set for integer class labels, ``attribute_names`` for binary attribute
    vectors, ``factor_names``/``factor_sizes`` for datasets with known generative factors.
    """

    shape: tuple[int, ...]
    value_range: tuple[float, float] = (-1.0, 1.0)
    num_classes: int | None = None
    attribute_names: tuple[str, ...] = ()
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    preprocess: ImagePreprocess | None = None
    """How a picture file becomes an example, for datasets read from picture files (None: the data are not pictures
    on disk, and ``Run.to_input`` stretches a picture to ``shape``)."""

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3



def to_unit(x: Tensor, spec: DataSpec) -> Tensor:
    """Data scaled from ``spec.value_range`` to [0, 1], for saving as an image."""
    low, high = spec.value_range
    return ((x - low) / (high - low)).clamp(0, 1)


@attrs.frozen(kw_only=True)
class DataBundle:
    """A dataset plugin's product: fixed splits plus their description.

    Each split yields ``(x, y)``: ``x`` a float tensor of ``spec.shape`` scaled to
    ``spec.value_range``; ``y`` an int64 class label, a float attribute vector, or an int64
    factor vector, as ``spec`` says (``label_kind``).
    A dataset that knows more than its examples (a manifold, generative factors) says so through
    ``generator``, an object implementing one of the capability protocols of this module.
    """

    spec: DataSpec
    train: Dataset[Any]
    val: Dataset[Any]
    test: Dataset[Any]
    label_kind: str = "class"  # "class", "attributes", "factors" or "none"
    generator: object | None = None
    """What the dataset knows beyond its examples; metrics test it with the capability protocols
    below (:class:`KnowsManifold`, :class:`RendersFactors`, :class:`KnowsLineAngles`)."""


@attrs.frozen(kw_only=True)
class BuildContext:
    """What a component may need when it is built, besides its own config."""

    data: DataSpec
    code_shape: tuple[int, ...] = ()
    build_discriminator: Callable[[], Discriminator] | None = None
    """Builds a fresh critic body from the recipe's ``discriminator`` section (raises a
    MixframeError naming the missing section when the recipe has none)."""


class Encoder(nn.Module, abc.ABC):
    """f: maps a batch ``(B, *data.shape)`` to codes ``(B, *code_shape)``.

    Subclasses set ``self.code_shape`` in ``__init__`` (for example ``(16, 4, 4)``): mixers
    treat axis 1 of the codes as channels (feature maps) and the rest as positions.
    """

    code_shape: tuple[int, ...]

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor: ...


class Decoder(nn.Module, abc.ABC):
    """g: maps codes ``(B, *context.code_shape)`` back to data ``(B, *data.shape)``.

    The output is in the data's value range (or logits when ``outputs_logits`` is True, for a
    BCE reconstruction loss); ``to_data`` turns the raw output into data space.
    """

    outputs_logits: bool = False

    @abc.abstractmethod
    def forward(self, h: Tensor) -> Tensor: ...

    def to_data(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.outputs_logits else out


class Discriminator(nn.Module, abc.ABC):
    """A critic's body: maps data ``(B, *data.shape)`` to features ``(B, out_features)``.

    Regularizers put their own heads on top; ``spectral_norm`` is applied by the network.
    """

    out_features: int

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor: ...


@attrs.frozen(kw_only=True)
class MixResult:
    """A mixer's output: the mixed codes and everything it drew to make them.

    ``codes``: ``h_mix``, the shape of one source batch, equal to ``mixer.combine(sources, weights)``:
    ``blend(sources, weights)`` for a convex mixer (the default), the mixer's own geometry otherwise
    (slerp: the great-circle point at the second source's share).
    ``weights``: where the mix lies between its sources: the share of each of the k sources,
    summing to 1 over k (axis 1), either ``(B, k, C)``, one share per feature map broadcast over
    positions (``C = codes.shape[1]``), or ``(B, k, *code_shape)``, one per feature map and position
    (``code_shape = codes.shape[1:]``). Mixup's alpha, a Bernoulli mask, a one-hot choice of source,
    a spatial mask (a latent CutMix) and slerp's position t are all this tensor.
    What uses it: not the engine's loop, which only decodes ``codes`` (and logs ``extras`` and adds
    ``loss``); the components that judge a mix do, through this contract alone: ACAI's critic
    regresses the first source's share ``weights[:, 0]`` from the decoded mix, and code that must
    redo or explain a mix (``mixer.combine(sources, weights)``, ``Run.mix``) reads it.
    ``labels``: mixed labels (``y_mix``) when the mixer mixes labels too, else None.
    ``extras``: anything else worth logging or drawing (for example ``p``, Bernoulli parameters).
    ``loss``: a term the mixer adds to the autoencoder's loss (for example a mask prior), or None.
    """

    codes: Tensor
    weights: Tensor
    labels: Tensor | None = None
    extras: Mapping[str, Tensor] = attrs.field(factory=dict)
    loss: Tensor | None = None


def blend(sources: Sequence[Tensor], weights: Tensor) -> Tensor:
    """The mix ``sum_i weights[:, i] * sources[i]`` that a :class:`MixResult`'s weights describe.

    ``sources``: k tensors ``(B, C, ...)``; ``weights``: ``(B, k, C)`` (broadcast over positions) or
    ``(B, k, *code_shape)``. Mixers build their codes with it, so that codes and weights agree by
    construction and regularizers or metrics can recompute a mix from its weights.
    """
    if weights.dim() < 3 or weights.shape[1] != len(sources):
        raise ValueError(f"weights must be (B, k={len(sources)}, C, ...), got shape {tuple(weights.shape)}")
    extra = sources[0].dim() + 1 - weights.dim()
    if extra < 0:
        raise ValueError(f"weights of shape {tuple(weights.shape)} have more axes than (B, k, *code_shape) "
                         f"for sources of shape {tuple(sources[0].shape)}")
    w = weights.reshape(*weights.shape, *([1] * extra))
    out = w[:, 0] * sources[0]
    for i in range(1, len(sources)):
        out = out + w[:, i] * sources[i]
    return out


# The interpolation modes of a Mixer (``Mixer.interpolation``) and the weights each puts on two codes.
Mode = Literal["linear", "bernoulli"]
MODES: tuple[str, ...] = ("linear", "bernoulli")


def check_steps(steps: int) -> None:
    if steps < 2:
        raise MixframeError(f"--steps must be at least 2 (the two ends), got {steps}")


def interpolation_weights(channels: int, steps: int, mode: Mode | str = "linear", seed: int = 0) -> Tensor:
    """``(steps, 2, channels)``: the weights of h1 and h2 at each step, from all h1 (first) to all h2 (last).

    ``linear``: (1 - a, a) for a evenly spaced in [0, 1]. ``bernoulli``: one seeded random order of
    the channels; at step j the first round(j C / (K - 1)) of them come from h2, so the count of
    swapped maps never decreases.
    """
    check_steps(steps)
    if mode == "linear":
        to_second = torch.linspace(0, 1, steps)[:, None].expand(steps, channels)
    elif mode == "bernoulli":
        order = torch.randperm(channels, generator=torch.Generator().manual_seed(seed))
        to_second = torch.zeros(steps, channels)
        for j in range(steps):
            to_second[j, order[: round(j * channels / (steps - 1))]] = 1.0
    else:
        raise MixframeError(f"unknown interpolation mode {mode!r}; choices: {', '.join(MODES)}")
    return torch.stack([1 - to_second, to_second], dim=1)


class Mixer(nn.Module, abc.ABC):
    """Combines k batches of codes into one batch of mixes.

    ``sources[0]`` is the batch itself and ``sources[1:]`` are its partners (the engine pairs
    examples within the batch by random permutations). ``labels`` are given in the same order when
    the mixer sets ``uses_labels``. A mixer may have trainable parameters: they are trained with
    the autoencoder.
    """

    num_sources: int = 2
    uses_labels: bool = False
    interpolation: str = "linear"
    """How pictures interpolate between two codes in this mixer's spirit: "linear", or "bernoulli"
    (swapping progressively more whole feature maps, for mixers that take maps from one parent)."""

    @abc.abstractmethod
    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult: ...

    def training_state(self) -> dict[str, Any]:
        """State beyond parameters and buffers (running counts, moments: plain data), saved in every
        checkpoint under ``components`` and handed back to ``load_training_state`` when the run resumes."""
        return {}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Called only with what ``training_state`` returned (never for a run started afresh)."""

    def combine(self, sources: Sequence[Tensor], weights: Tensor) -> Tensor:
        """The mix that ``weights`` describe: ``blend(sources, weights)``, a convex combination. A mixer whose mixes
        are not convex combinations (slerp) overrides it, and so declares it: its contract then checks its codes
        against its own ``combine``, and that a one-hot weight gives back that source."""
        return blend(sources, weights)


class Step:
    """One minibatch as the regularizers see it; tensors are computed once and shared.

    ``x``, ``y``: the batch and its labels. ``h``: codes. ``x_rec``: decoded reconstructions in
    data space. ``mix``: the mixer's :class:`MixResult` or None. ``x_mix``: decoded mixes.
    ``encoder``/``decoder``: the modules (for terms such as consistency that re-encode).
    On a critic-only step every tensor is computed without gradients.
    """

    def __init__(
        self,
        *,
        x: Tensor,
        y: Tensor | None,
        h: Tensor,
        x_rec: Tensor,
        mix: MixResult | None,
        x_mix: Tensor | None,
        encoder: Encoder,
        decoder: Decoder,
    ) -> None:
        self.x, self.y, self.h, self.x_rec = x, y, h, x_rec
        self.mix, self.x_mix = mix, x_mix
        self.encoder, self.decoder = encoder, decoder


@attrs.frozen(kw_only=True)
class CriticSettings:
    """How the engine trains a regularizer's critic, where the regularizer owns it; None: the recipe's ``train.*``.

    ``steps``: the critic's optimizer steps per autoencoder update, spread evenly over the minibatches of an
    update (``train.update_g_every`` of them; a minibatch with several steps repeats them on its batch with the
    critic's own fresh randomness); None: one per minibatch, the recipe's schedule. ``lr``, ``betas``,
    ``weight_decay``: the critic's Adam settings (None: ``train.critic_lr`` or ``train.lr``, ``train.betas``,
    ``train.weight_decay``). A WGAN-GP critic asks for 5 steps and betas (0, 0.9) here, whatever the recipe's
    other critics use."""

    steps: int | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None


class Regularizer(nn.Module, abc.ABC):
    """Adds weighted terms to the autoencoder's loss, and may own a trainable critic.

    ``autoencoder_loss`` returns named, already weighted terms that the engine adds to the
    autoencoder's loss. A regularizer with a critic also implements ``critic_loss`` (named terms
    whose sum the engine minimises with the critic's own optimizer, on detached inputs) and
    ``critic_chance`` (the value each critic term takes for a critic that learns nothing, such as
    ln 2 for a BCE term), so that logs can show whether the critic learns. A critic that can score
    any batch also implements :class:`ScoresData` (``critic_score``), so that the stall watch can
    tell a blind critic from a fooled one. A critic that needs its own schedule or optimizer settings
    says so with ``critic_settings`` (:class:`CriticSettings`).
    """

    gradient_targets: tuple[str, ...] = ("decoder",)
    """The modules among ``"encoder"``, ``"decoder"`` whose parameters ``autoencoder_loss``'s terms
    reach (a term on decoded data reaches both; a penalty on the codes alone only the encoder). The
    contract suite checks that each one gets a gradient, so a term that was detached by mistake
    shows up in the plugin's tests rather than as a run that silently does not regularize."""

    @abc.abstractmethod
    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]: ...

    def critic_loss(self, step: Step) -> dict[str, Tensor]:
        return {}

    def critic_chance(self) -> dict[str, float]:
        return {}

    def critic_parameters(self) -> Iterable[nn.Parameter]:
        return ()

    def training_state(self) -> dict[str, Any]:
        """State beyond parameters and buffers (running counts, moments: plain data), saved in every
        checkpoint under ``components`` and handed back to ``load_training_state`` when the run resumes."""
        return {}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Called only with what ``training_state`` returned (never for a run started afresh)."""

    def critic_settings(self) -> CriticSettings:
        """How the engine trains this regularizer's critic (its steps and Adam settings); the default is the recipe's."""
        return CriticSettings()


class RunView(Protocol):
    """What a metric (or any code below the API) may use of a trained run; :class:`mixframe.Run` is one.

    Stated here so that the kernel names no class above it: a metric is written against this view,
    and the run store hands it a ``Run``. ``recipe`` is the run's :class:`mixframe.kernel.recipe.Recipe`
    (typed loosely: the contracts sit below the recipe code, which finds components through the registry,
    which checks what it builds against these contracts)."""

    recipe: Any
    spec: DataSpec
    mixer: Mixer | None
    epoch: int
    seed: int

    @property
    def dir(self) -> Path: ...
    @property
    def name(self) -> str: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def data(self) -> DataBundle: ...
    def encode(self, x: Tensor) -> Tensor: ...
    def decode(self, h: Tensor) -> Tensor: ...
    def mix(self, *codes: Tensor, mixer: str | Mixer | None = None, labels: Sequence[Tensor] | None = None,
            seed: int | None = None, **params: Any) -> MixResult: ...
    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 8, mode: str = "linear", seed: int = 0) -> Tensor: ...
    def codes(self, split: str) -> tuple[np.ndarray, np.ndarray]: ...


class Metric(abc.ABC):
    """Turns a trained run into numbers. Built as ``Metric(config, context)``; ``evaluate``
    returns a flat mapping of name to value (higher or lower is better as its name says).
    ``headline`` names the one value a picture's caption shows (a sweep's panels), if any.
    ``meanings`` gives each value's one-line meaning, shown beside it by reports and ``mixframe
    evaluate``; a key may hold ``{n}`` for a family of names (``probe_acc_{n}`` for probe_acc_10).
    ``directions`` says which way is better for the keys a study may rank by (``"max"`` or ``"min"``);
    ``references`` maps a key to the key (or a tuple of keys) of its references measured on the same
    evaluation set by no trained model: a no-learning value (``on_manifold_fraction`` ->
    ``data_mix_on_manifold_fraction``) or a real-against-real floor (``mix_fid`` -> ``real_fid_floor``),
    for a study's reference rows.

    ``split`` is the data split scored: ``"test"`` (the default: tables) or ``"val"`` (a study's tuning
    runs, so that choosing settings never sees the test split). A metric that draws fresh examples from a
    generator instead of a split draws the ``"val"`` ones from a stream of their own."""

    headline: str | None = None
    meanings: dict[str, str] = {}
    directions: dict[str, str] = {}
    references: dict[str, str | tuple[str, ...]] = {}

    @abc.abstractmethod
    def evaluate(self, run: RunView, split: str = "test") -> dict[str, float]: ...


# ---------------------------------------------------------------------------------------------
# Capabilities beyond an interface: a component that has one implements the protocol, and the code
# that needs it checks ``isinstance(obj, Protocol)`` instead of reaching into the plugin.


@runtime_checkable
class PredictsMasks(Protocol):
    """A two-parent mixer whose feature-map mask is predicted from attribute labels (supervised AMR).

    ``masks_for(condition)`` gives Bernoulli parameters p ``(N, C)`` for the mask network's inputs
    ``(N, A)``; ``mask_condition`` says what those inputs are: ``"y_mix"`` (the mixed attribute
    vector) or ``"sources"`` (which parent each attribute is taken from, 1 = the first).
    ``soft_masks`` is True when the mixer mixes with m = p rather than sampling m ~ Bernoulli(p).
    ``draw_targets(y1, y2, generator)`` draws ``(y_mix, from_first)`` exactly as training does.
    """

    mask_condition: str
    soft_masks: bool

    def masks_for(self, condition: Tensor) -> Tensor: ...

    def draw_targets(self, y1: Tensor, y2: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class ScoresData(Protocol):
    """A regularizer whose critic scores arbitrary data: ``critic_score(x)`` maps a batch ``(B, *data.shape)``
    to ``(B,)`` scores, higher meaning "more like real data" (unconditional: no labels). Called without
    gradients, in eval mode. Used to probe whether a critic learned anything: a critic at its blind-guess
    loss may be blind (it tells nothing apart) or fooled (it tells real data from obvious fakes, but not
    from the autoencoder's outputs); only scores on inputs it was not trained on can say which."""

    def critic_score(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class DrawsPanel(Protocol):
    """A metric that can picture a run on one matplotlib axis (``draw_panel(run, ax)``): a sweep's panels.png draws
    one panel per grid point with it, captioned with the point and the metrics' headline values, titled
    ``panel_title``. The built-in ``manifold`` metric draws decoded mixes over real points of 2-D data."""

    panel_title: str

    def draw_panel(self, run: RunView, ax: Any) -> None: ...


@runtime_checkable
class KnowsManifold(Protocol):
    """A dataset generator that knows the manifold its points lie on (the 2-D spiral)."""

    on_manifold_threshold: float

    def distance_to_manifold(self, points: Tensor) -> Tensor: ...


@runtime_checkable
class RendersFactors(Protocol):
    """A dataset generator that draws examples from known generative factors (dSprites)."""

    def sample_factors(self, n: int, generator: torch.Generator) -> Tensor: ...

    def render(self, factors: Tensor) -> Tensor: ...


@runtime_checkable
class KnowsLineAngles(Protocol):
    """A dataset generator that finds the nearest true line of an image (ACAI's lines benchmark)."""

    angle_period: float

    def angle_of(self, images: Tensor) -> tuple[Tensor, Tensor]: ...


# ---------------------------------------------------------------------------------------------
# Callbacks: the engine's loop only loops; everything around it reacts to these events.

VALIDATION_LOSS = "val/reconstruction"
"""The name the validation loss is logged under (``epoch/val/reconstruction`` in metrics.csv), through
:meth:`TrainerView.log_validation`: the epoch's line shows it, the run folder keeps the best checkpoint by
it, the report lists it."""

LEVEL_SUFFIX = "_chance"
"""A value logged as ``NAME_chance`` (:meth:`TrainerView.log_level`) is NAME's reference level, what a model
that learns nothing scores: loss_curves.png draws it dashed beside NAME instead of as a curve of its own."""


def to_images(x: Tensor, spec: DataSpec) -> list[Any]:
    """PIL images of data ``(N, C, H, W)`` (or one ``(C, H, W)``) in ``spec.value_range``."""
    from PIL import Image

    x = x.detach().cpu().float()
    x = x[None] if x.dim() == len(spec.shape) else x
    pixels = (to_unit(x, spec) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]


class RunFolderView(Protocol):
    """What a callback may use of the run folder being written (``trainer.run``): its ``path``, a
    ``file(name)`` in it (``mixframe.RunFolder``'s names: ``RunFolder.GRIDS``, ...), the run's shared
    TensorBoard writer, the per-epoch values logged so far (name without ``epoch/`` -> [(epoch, value)]), and
    ``write_artifact`` / ``write_json_artifact`` / ``write_picture`` / ``copy_artifact``: a file of the run written
    atomically, a full disk turned into a message naming the path."""

    @property
    def path(self) -> Path: ...
    def file(self, name: str) -> Path: ...
    def tensorboard(self) -> Any: ...
    def epoch_curves(self) -> dict[str, list[tuple[int, float]]]: ...
    @property
    def has_checkpoint(self) -> bool: ...
    def write_artifact(self, name: str, data: bytes) -> Path: ...
    def write_json_artifact(self, name: str, data: Any) -> Path: ...
    def write_picture(self, name: str, picture: Any, dpi: int = 120) -> Path: ...
    def copy_artifact(self, source: str, name: str) -> Path: ...


class ModelView(Protocol):
    """What a callback may use of the model being trained (``trainer.model``).

    ``encode`` / ``decode`` / ``mix`` / ``to_images`` work as :class:`mixframe.Run`'s do: in eval mode,
    without gradients, on the model's device (inputs are moved there), leaving the training mode and
    the training's random streams as they were. ``encoder``, ``decoder`` and ``mixer`` are the modules
    themselves; ``reconstruction_loss(out, x)`` is the recipe's weighted loss on the decoder's raw output;
    ``with model.evaluating():`` runs a block of your own in eval mode without gradients."""

    spec: DataSpec
    encoder: Encoder
    decoder: Decoder
    mixer: Mixer | None

    def encode(self, x: Tensor) -> Tensor: ...
    def decode(self, h: Tensor) -> Tensor: ...
    def mix(self, *codes: Tensor, labels: Sequence[Tensor] | None = None, seed: int = 0) -> MixResult: ...
    def to_images(self, x: Tensor) -> list[Any]: ...
    def reconstruction_loss(self, out: Tensor, x: Tensor) -> Tensor: ...
    def evaluating(self) -> AbstractContextManager[None]: ...


class TrainerView(Protocol):
    """What a callback is handed on every event: the training in progress, read-only except where said.

    * ``epoch``: epochs finished (in ``on_epoch_end``, the one just finished, from 1); ``step``: minibatches
      trained so far; ``done``: True in the last epoch's ``on_epoch_end``; ``rank`` / ``world``: this
      process among torchrun's (0 / 1 otherwise); ``steps_per_epoch``, ``total_steps``; ``threads`` /
      ``threads_source``: the CPU threads torch was given and where the number came from.
    * ``recipe`` (``recipe.train`` holds the training settings), ``device``, ``data`` (the
      :class:`DataBundle`: ``data.train`` / ``data.val`` / ``data.test`` yield ``(x, y)``), ``model``
      (a :class:`ModelView`), ``critics`` (``(name, regularizer)`` of every regularizer with a critic).
    * ``run``: the :class:`RunFolderView` being written, None when training in memory and on ranks above
      0: write files only when it is set.
    * ``log(name, value)``: the one channel for a value the callback measured; it joins the epoch's means
      as ``epoch/NAME`` (metrics.csv, TensorBoard, the epoch's line for core names) and the callbacks
      after this one see it in ``means``. ``panel`` names the loss_curves.png panel it is drawn in
      (``panels`` keeps name -> panel); otherwise the core's panels take it by its first path segment. ``log_level(name, level)``: NAME's reference level
      (:data:`LEVEL_SUFFIX`). ``log_validation(loss, keep_best=True)``: the validation loss
      (:data:`VALIDATION_LOSS`), by which the run folder keeps ``checkpoint_best.pt``; ``validation_loss``
      is this epoch's (None until one is logged).
    * ``warn(message)``: a message for the user (printed, kept in warnings.log); start it with
      ``"warning: "`` for what needs acting on (reports highlight it), ``"note: "`` for information.
    * ``should_stop``: set it to True to end training after this minibatch (an early stop; the run is
      saved and marked complete, and ``mixframe resume`` can go on from there).
    * ``state()``: everything a checkpoint holds (the run folder's own callbacks save it);
      ``ranks_identical``: whether every process ended with the same weights (known in ``on_end``).
    """

    recipe: Any  # a mixframe.kernel.recipe.Recipe, not imported here: the registry's modules import this one
    epoch: int
    step: int
    rank: int
    world: int
    device: torch.device
    data: DataBundle
    critics: list[tuple[str, Regularizer]]
    run: RunFolderView | None
    should_stop: bool
    means: dict[str, float]
    validation_loss: float | None
    keep_best: bool
    panels: dict[str, str]
    ranks_identical: bool
    threads: int
    threads_source: str

    @property
    def model(self) -> ModelView: ...
    @property
    def done(self) -> bool: ...
    @property
    def steps_per_epoch(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    def log(self, name: str, value: float, *, panel: str | None = None) -> None: ...
    def log_level(self, name: str, level: float) -> None: ...
    def log_validation(self, loss: float, *, keep_best: bool = True) -> None: ...
    def warn(self, message: str) -> None: ...
    def state(self) -> dict[str, Any]: ...


class Callback:
    """Reacts to the training engine's events; every method is optional.

    Built as ``Callback(config, context)`` when a recipe names it under ``callbacks:``; a callback
    passed to ``mixframe.train(..., callbacks=[...])`` is any instance. Every event gets a
    :class:`TrainerView`. ``logs`` holds this minibatch's losses as detached tensors (turn one into
    a float only when you need it: on a GPU that waits for the device); ``means`` the epoch's means as
    floats, with the values logged (``trainer.log``) by the callbacks before this one.

    ``order`` says when a callback hears an event among the others (lower first; equal orders keep the
    order they were given in: the recipe's, then ``mixframe.train``'s ``callbacks``):
     ``Callback.OPEN`` (-1000) opens what hears everything (train.log); ``MEASURE`` (0, the default)
    measures and logs values; ``DRAW`` (500) draws pictures from what was measured; ``RECORD`` (1000)
    records the epoch (metrics.csv, checkpoints, run.json); ``REPORT`` (2000) shows it (the epoch's
    line); ``CLOSE`` (3000) closes what ``OPEN`` opened.

    ``state_dict()`` / ``load_state_dict(state)``: what the callback has counted so far (plain data:
    numbers, strings, lists, dicts), saved in every checkpoint and handed back before ``on_start``
    when the run resumes, so that its diagnostics go on where they were.

    ``on_evaluation`` is the one event outside training: a callback class of the recipe that defines it is
    built again when the run is evaluated, to record the numbers beside what it recorded while training.
    """

    OPEN, MEASURE, DRAW, RECORD, REPORT, CLOSE = -1000, 0, 500, 1000, 2000, 3000
    order: int = MEASURE

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Called only with what this callback's ``state_dict`` returned (never for a run started afresh)."""

    def on_start(self, trainer: TrainerView) -> None: ...

    def on_step_end(self, trainer: TrainerView, logs: Mapping[str, Tensor]) -> None: ...

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        """Runs before the checkpoint of this epoch; report values with ``trainer.log``."""

    def on_warning(self, trainer: TrainerView, message: str) -> None: ...

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None: ...

    def on_failure(self, trainer: TrainerView, error: BaseException) -> None: ...

    def on_evaluation(self, run: RunFolderView, recipe: Any, values: Mapping[str, float], *, split: str, step: int) -> None:
        """After the run's metrics were computed (``mixframe evaluate``, ``Run.evaluate``, a sweep's or a study's
        evaluation): ``values`` (key -> number, at the metrics' own seeds) on ``split`` (``"test"`` or ``"val"``) of the
        model trained ``step`` minibatches, in the folder ``run`` of the run whose ``recipe`` built this callback. No
        trainer: the callback is built from the recipe for this event alone, with the run folder's lock held."""


def ordered(callbacks: Iterable[Callback]) -> list[Callback]:
    """Callbacks in the order they hear events: by ``order``, ties in the order given."""
    return sorted(callbacks, key=lambda c: getattr(c, "order", Callback.MEASURE))


# ---------------------------------------------------------------------------------------------
# Launchers: how a sweep's runs are started (processes on this machine, Ray tasks, Slurm jobs).


@attrs.frozen(kw_only=True)
class RunTask:
    """One run of a sweep, as a launcher hands it to :func:`mixframe.tools.sweep.run_task` in a process of its own.

    Plain data (picklable; ``to_dict``/``from_dict`` for JSON), every path absolute. ``key`` names the run
    within its sweep and ``label`` says which grid point and seed it is, for messages. The run trains
    ``recipe`` with ``overrides`` into ``out/NAME-TIME`` (or resumes the run folder already there), then
    computes ``metrics`` (empty: the recipe's). ``log`` receives the process's output. ``threads``: CPU
    threads for the run (``torch.set_num_threads``), None for torch's default; a launcher sets it with
    ``attrs.evolve(task, threads=n)``. ``split``: the data split the metrics score (a study's tuning runs:
    ``"val"``); ``eval_seeds``: evaluation seeds the metrics are computed again with (a study's table runs).
    """

    key: str
    label: str
    recipe: str
    overrides: tuple[str, ...]
    metrics: tuple[str, ...]
    out: str
    name: str
    log: str
    threads: int | None = None
    split: str = "test"
    eval_seeds: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunTask:
        return cls(**{**data, "overrides": tuple(data["overrides"]), "metrics": tuple(data["metrics"]),
                      "eval_seeds": tuple(data.get("eval_seeds", ()))})


@attrs.frozen(kw_only=True)
class LaunchContext:
    """What a launcher may need when it is built: ``folder``, the sweep folder (for its own files, such as
    job scripts and scheduler logs)."""

    folder: Path


class LaunchEvents(Protocol):
    """What a launcher tells the sweep: a run started (``where``: a process id, host, GPU or job id, for
    the progress line and sweep.json), and a run ended with its ``outcome``."""

    def started(self, task: RunTask, where: str = "") -> None: ...

    def finished(self, task: RunTask, outcome: Mapping[str, Any]) -> None: ...


class Launcher(abc.ABC):
    """Runs the runs of a sweep, each in a process of its own: on this machine, on a Ray cluster, through Slurm.

    Built as ``Launcher(config, context)`` (a :class:`LaunchContext`); ``mixframe sweep --launcher NAME
    --launcher-set KEY=VALUE`` fills ``config``. ``launch(tasks, events)`` calls
    :func:`mixframe.tools.sweep.run_task` for every task in a fresh process (directly, as it is picklable, or
    through ``python -m mixframe.tools.sweep run-one TASK_JSON OUTCOME_FILE``), at most as many at once as its
    config allows; tells ``events`` when each starts and when it ends, with the dict ``run_task``
    returned or, for a process that died, ``{"status": "failed", "message": WHY}``; and returns once
    every task has ended. A run's failure is an outcome, never an exception: the other runs go on. On
    ``KeyboardInterrupt`` it stops what it started (processes, tasks, jobs) and re-raises.
    """

    @abc.abstractmethod
    def launch(self, tasks: Sequence[RunTask], events: LaunchEvents) -> None: ...


@attrs.frozen(kw_only=True)
class DataContext:
    """What a dataset may need when it is built, besides its own config: ``seed``, the recipe's seed (a dataset
    whose splits are drawn at random may use it where its config names no seed of its own)."""

    seed: int = 0


INTERFACES: dict[str, type] = {"mixer": Mixer, "regularizer": Regularizer, "encoder": Encoder, "decoder": Decoder,
                               "discriminator": Discriminator, "dataset": DataBundle, "metric": Metric, "callback": Callback,
                               "launcher": Launcher}
"""What :meth:`mixframe.kernel.registry.Registry.build` checks a built component of each kind against (a dataset's
implementation returns a DataBundle; the others are classes subclassing their interface)."""
