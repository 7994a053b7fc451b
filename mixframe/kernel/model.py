"""Assemble the components a recipe names into one module, and compute one minibatch's tensors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import (
    BuildContext,
    DataBundle,
    DataContext,
    DataSpec,
    Discriminator,
    Mixer,
    MixResult,
    Regularizer,
    Step,
    to_images,
)
from mixframe.kernel.randomness import kept_random_state
from mixframe.kernel.recipe import Recipe, reconstruction_needs
from mixframe.kernel.registry import Registry, get_registry
from mixframe.kernel.registry_types import CAPABILITIES


def build_data(recipe: Recipe, registry: Registry | None = None) -> DataBundle:
    """The dataset the recipe names (its files are read here, so errors name the folder)."""
    registry = registry or get_registry()
    data: DataBundle = registry.build("dataset", recipe.data.name, recipe.data.config, DataContext(seed=recipe.seed))
    return data


def check_built_needs(recipe: Recipe, built: dict[str, list[tuple[str, object]]], registry: Registry) -> None:
    """The recipe checker's needs (``Component.requires`` and the reconstruction loss's), checked against the built
    components (``built``: kind -> [(name, object)]) with each capability's ``holds``: the same declarations, so a
    component whose declaration is missing or false cannot slip through to training. A need of a kind that the
    built components lack is unmet; one its check cannot tell (None) is taken as met."""
    needers = [(f"{spec.kind} {spec.name!r}", spec.config, registry.get(spec.kind, spec.name).requires)
               for spec in (recipe.encoder, recipe.decoder, recipe.mixer, *recipe.regularizers) if spec is not None]
    needers.append((f"reconstruction.loss {recipe.reconstruction.loss!r}", None, reconstruction_needs(recipe.reconstruction.loss)))
    for who, config, requires in needers:
        for need in requires:
            cap = CAPABILITIES.get(need.capability)
            if cap is None or cap.kind not in built or (config is not None and not need.when(config)):
                continue
            because = f" because {need.why}" if need.why else ""
            if not built[cap.kind]:
                raise MixframeError(f"{who} needs {cap.meaning} ({need.capability}){because}, but the recipe has no {cap.kind}; "
                                    f"add a '{cap.kind}:' section that provides it (see mixframe components {cap.kind})")
            for name, obj in built[cap.kind]:
                if cap.holds(obj) is False:
                    raise MixframeError(f"{who} needs {cap.meaning} ({need.capability}){because}, but the {cap.kind} {name!r} "
                                        "as built does not provide it; change its settings or choose another (mixframe recipe check "
                                        "says which would do)")


class CheckpointMismatch(MixframeError):
    """A checkpoint's weights or optimizer states do not fit what the recipe builds now (the one message for it)."""

    def __init__(self, source: str, err: BaseException) -> None:
        lines = str(err).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else (lines[0] if lines else type(err).__name__)
        super().__init__(f"the checkpoint {source} does not fit the model its recipe builds now ({detail}); it was written by another "
                         "recipe or an older version of the networks: train the run again")


def load_states(source: str, pairs: list[tuple[Any, Any]]) -> None:
    """``module.load_state_dict(state)`` for each (module or optimizer, state) pair; a state that does not fit is
    :class:`CheckpointMismatch` naming ``source``, whatever the error (shapes, keys, types)."""
    try:
        for target, state in pairs:
            target.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise CheckpointMismatch(source, err) from None


@torch.no_grad()
def nonfinite(model: Model, x: Tensor) -> str | None:
    """What is not finite in ``model``: a weight, or its reconstruction loss on the examples ``x``; None when all is finite.
    A huge learning rate can leave finite losses in the log and weights of 1e30 whose outputs are inf or NaN."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        return f"the weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} are not finite"
    if len(x):
        was_training = model.training
        model.eval()
        try:
            loss = model.reconstruction_loss(model.decoder(model.encoder(x)), x)
        finally:
            model.train(was_training)
        if not bool(torch.isfinite(loss)):
            return f"the reconstruction loss of the first {len(x)} examples is {float(loss)}"
    return None


class Model(nn.Module):
    """Encoder, decoder, optional mixer and regularizers, built from a recipe with its seed.

    It needs only the data's description (``DataSpec``), not the data: a finished run is rebuilt from
    its folder's record alone. The weights are drawn from the recipe's seed on a random stream of their
    own: building a model leaves the caller's random state as it was. ``encode`` / ``decode`` / ``mix`` /
    ``to_images`` are what a callback uses (:class:`~mixframe.kernel.interfaces.ModelView`).
    """

    def __init__(self, recipe: Recipe, spec: DataSpec, registry: Registry | None = None) -> None:
        super().__init__()
        with kept_random_state():
            torch.manual_seed(recipe.seed)
            self._build(recipe, spec, registry or get_registry())

    def _build(self, recipe: Recipe, spec: DataSpec, registry: Registry) -> None:
        self.recipe, self.spec = recipe, spec
        base = BuildContext(data=spec)
        self.encoder = registry.build("encoder", recipe.encoder.name, recipe.encoder.config, base)
        context = BuildContext(data=spec, code_shape=tuple(self.encoder.code_shape), build_discriminator=self._discriminator_builder(registry))
        self.decoder = registry.build("decoder", recipe.decoder.name, recipe.decoder.config, context)
        self.mixer: Mixer | None = None
        if recipe.mixer is not None:
            self.mixer = registry.build("mixer", recipe.mixer.name, recipe.mixer.config, context)
        self.regularizers = nn.ModuleList(registry.build("regularizer", spec.name, spec.config, context) for spec in recipe.regularizers)
        self.regularizer_names = [spec.name for spec in recipe.regularizers]
        self.needs_mix = any(need.capability == "mix" and need.when(spec.config)
                             for spec in recipe.regularizers for need in registry.get("regularizer", spec.name).requires)
        """Whether a regularizer judges decoded mixes (it requires the capability "mix"): the engine then decodes mixes."""
        check_built_needs(recipe, {"dataset": [(recipe.data.name, spec)], "decoder": [(recipe.decoder.name, self.decoder)],
                                   "mixer": [(recipe.mixer.name, self.mixer)] if recipe.mixer is not None and self.mixer is not None else []},
                          registry)

    def _discriminator_builder(self, registry: Registry) -> Callable[[], Discriminator]:
        recipe = self.recipe

        def build() -> Discriminator:
            if recipe.discriminator is None:
                raise MixframeError("a regularizer needs a critic network, but the recipe has no 'discriminator:' section; "
                                    f"add one, for example {{kind: {recipe.encoder.name}}} (choices: {', '.join(registry.names('discriminator'))})")
            context = BuildContext(data=self.spec, code_shape=tuple(self.encoder.code_shape))
            critic: Discriminator = registry.build("discriminator", recipe.discriminator.name, recipe.discriminator.config, context)
            return critic

        return build

    def critics(self) -> list[tuple[str, Regularizer]]:
        return [(f"{i}_{n}", r) for i, (n, r) in enumerate(zip(self.regularizer_names, self.typed_regularizers())) if list(r.critic_parameters())]

    def typed_regularizers(self) -> list[Regularizer]:
        """The regularizers, as a list a type checker sees as Regularizers (an nn.ModuleList yields plain Modules)."""
        return cast("list[Regularizer]", list(self.regularizers))

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        critic_ids = {id(p) for _, r in self.critics() for p in r.critic_parameters()}
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        if self.mixer is not None:
            params += list(self.mixer.parameters())
        params += [p for r in self.regularizers for p in r.parameters() if id(p) not in critic_ids]
        return params

    def forward_step(self, x: Tensor, y: Tensor | None, *, with_mix: bool) -> tuple[Step, Tensor]:
        """The shared tensors of one minibatch, and the decoder's raw output (for the loss)."""
        h = self.encoder(x)
        out = self.decoder(h)
        x_rec = self.decoder.to_data(out)
        mix = x_mix = None
        if with_mix and self.mixer is not None and self.mixer.num_sources > 1:
            perms = [torch.randperm(x.shape[0], device=x.device) for _ in range(self.mixer.num_sources - 1)]
            sources = [h, *(h[p] for p in perms)]
            labels = [y, *(y[p] for p in perms)] if self.mixer.uses_labels and y is not None else None
            mix = self.mixer(sources, labels)
            x_mix = self.decoder.to_data(self.decoder(mix.codes))
        step = Step(x=x, y=y, h=h, x_rec=x_rec, mix=mix, x_mix=x_mix, encoder=self.encoder, decoder=self.decoder)
        return step, out

    # -- what a callback uses (ModelView) -------------------------------------------------------------
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode without gradients for the block, the previous mode restored after it."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: Tensor) -> Tensor:
        """Codes ``(N, *code_shape)`` of data ``(N, *spec.shape)``."""
        with self.evaluating():
            return cast(Tensor, self.encoder(x.to(self.device)))

    def decode(self, h: Tensor) -> Tensor:
        """Data ``(N, *spec.shape)``, in ``spec.value_range``, decoded from codes."""
        with self.evaluating():
            return cast(Tensor, self.decoder.to_data(self.decoder(h.to(self.device))))

    def mix(self, *codes: Tensor, labels: Sequence[Tensor] | None = None, seed: int = 0) -> MixResult:
        """The model's mixer on batches of codes, its random draws seeded by ``seed`` on a stream of their own."""
        if self.mixer is None or self.mixer.num_sources != len(codes):
            have = "no mixer" if self.mixer is None else f"a mixer of {self.mixer.num_sources} batches"
            raise MixframeError(f"this model has {have}; {len(codes)} batches of codes were given")
        devices = [self.device] if self.device.type == "cuda" else []
        with self.evaluating(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return cast(MixResult, self.mixer([c.to(self.device) for c in codes], labels))

    def to_images(self, x: Tensor) -> list[Any]:
        """PIL images of data ``(N, C, H, W)`` (or one ``(C, H, W)``)."""
        return to_images(x, self.spec)

    def components(self) -> dict[str, Mixer | Regularizer]:
        """The components whose ``training_state`` a checkpoint keeps, by a name stable across runs of one recipe."""
        named: dict[str, Mixer | Regularizer] = {} if self.mixer is None else {"mixer": self.mixer}
        named.update({f"regularizers.{i}.{n}": cast(Regularizer, r) for i, (n, r) in enumerate(zip(self.regularizer_names, self.regularizers))})
        return named

    def training_state(self) -> dict[str, Any]:
        return {name: state for name, c in self.components().items() if (state := c.training_state())}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        for name, c in self.components().items():
            if name in state:
                c.load_training_state(state[name])

    def reconstruction_loss(self, out: Tensor, x: Tensor) -> Tensor:
        kind = self.recipe.reconstruction.loss
        if kind == "l1":
            loss = F.l1_loss(out, x)
        elif kind == "l2":
            loss = F.mse_loss(out, x)
        else:
            loss = F.binary_cross_entropy_with_logits(out, x)
        return self.recipe.reconstruction.weight * loss
