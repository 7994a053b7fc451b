"""Fully connected networks for vector data such as the 2-D spiral.

The encoder maps ``(B, D)`` through the ``hidden`` layers to a code ``(B, latent)`` (linear last
layer); the decoder runs the hidden sizes in reverse back to ``(B, D)`` with a linear output. The
critic body is the encoder's hidden stack and returns its last activations, ``(B, hidden[-1])``;
the regularizer adds the heads and the spectral norm.
"""

from __future__ import annotations

from typing import Literal

import attrs
from torch import Tensor, nn

from mixframe import BuildContext, Component, Decoder, Discriminator, Encoder, MixframeError, hookimpl, param, positive


def _positive_sizes(_inst: object, _attr: attrs.Attribute, value: tuple[int, ...]) -> None:
    if not value or any(v <= 0 for v in value):
        raise ValueError(f"must be a non-empty list of positive layer widths, got {list(value)!r}")


ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}
Activation = Literal["relu", "leaky_relu", "elu"]


@attrs.frozen(kw_only=True)
class MlpEncoderConfig:
    hidden: tuple[int, ...] = param((128, 128), help="widths of the hidden layers, input side first", validator=_positive_sizes)
    latent: int = param(2, help="size of the code vector", validator=positive)
    activation: Activation = param("relu", help="activation after each hidden layer (leaky_relu has slope 0.2)")


@attrs.frozen(kw_only=True)
class MlpDecoderConfig:
    hidden: tuple[int, ...] = param((128, 128), help="widths of the hidden layers, listed as in the encoder (used in reverse)",
                                    validator=_positive_sizes)
    activation: Activation = param("relu", help="activation after each hidden layer (leaky_relu has slope 0.2)")


@attrs.frozen(kw_only=True)
class MlpDiscriminatorConfig:
    hidden: tuple[int, ...] = param((128, 128), help="widths of the hidden layers; the body outputs hidden[-1] features",
                                    validator=_positive_sizes)
    activation: Activation = param("leaky_relu", help="activation after each hidden layer (leaky_relu has slope 0.2)")


def vector_size(context: BuildContext, who: str) -> int:
    """D of the context's data, which must be vectors (D,)."""
    shape = context.data.shape
    if len(shape) != 1:
        raise MixframeError(f"{who} needs vector data (D,) but the dataset's examples have shape {shape}; "
                            "use the 'conv' network for images")
    return shape[0]


def stack(sizes: list[int], activation: str) -> list[nn.Module]:
    """Linear layers between consecutive sizes, each followed by the activation."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return layers


class MlpEncoder(Encoder):
    """Vectors (B, D) to codes (B, latent)."""

    def __init__(self, config: MlpEncoderConfig, context: BuildContext) -> None:
        super().__init__()
        sizes = [vector_size(context, "encoder 'mlp'"), *config.hidden]
        self.net = nn.Sequential(*stack(sizes, config.activation), nn.Linear(sizes[-1], config.latent))
        self.code_shape = (config.latent,)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MlpDecoder(Decoder):
    """Codes (B, latent) back to vectors (B, D), linear output."""

    def __init__(self, config: MlpDecoderConfig, context: BuildContext) -> None:
        super().__init__()
        size = vector_size(context, "decoder 'mlp'")
        if len(context.code_shape) != 1:
            raise MixframeError(f"decoder 'mlp' needs a vector code (latent,), got code shape {tuple(context.code_shape)}; "
                                "use the 'mlp' encoder")
        sizes = [context.code_shape[0], *reversed(config.hidden)]
        self.net = nn.Sequential(*stack(sizes, config.activation), nn.Linear(sizes[-1], size))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class MlpDiscriminator(Discriminator):
    """Vectors (B, D) to features (B, hidden[-1])."""

    def __init__(self, config: MlpDiscriminatorConfig, context: BuildContext) -> None:
        super().__init__()
        sizes = [vector_size(context, "discriminator 'mlp'"), *config.hidden]
        self.net = nn.Sequential(*stack(sizes, config.activation))
        self.out_features = sizes[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _encoders() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="encoder", name="mlp", implementation=MlpEncoder, config=MlpEncoderConfig,
                      requires=(Requires("vector_data", "it is a fully connected network on flat vectors"),), provides=(),
                      summary="MLP encoder for vector data (D,), code (latent,)")]


def _decoders() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="decoder", name="mlp", implementation=MlpDecoder, config=MlpDecoderConfig,
                      requires=(Requires("vector_data", "it is a fully connected network on flat vectors"),),
                      provides=("linear_decoder",),
                      summary="MLP decoder for vector data, linear output")]


def _discriminators() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="discriminator", name="mlp", implementation=MlpDiscriminator, config=MlpDiscriminatorConfig,
                      requires=(Requires("vector_data", "it is a fully connected network on flat vectors"),),
                      provides=("critic",),
                      summary="MLP critic body for vector data, outputs (B, hidden[-1]) features")]


@hookimpl
def mixframe_components() -> list[Component]:
    return [*_encoders(), *_decoders(), *_discriminators()]
