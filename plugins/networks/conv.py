"""The ACAI/AMR convolutional autoencoder and critic body for square images of 16 to 128 pixels.

Encoder: a 1x1 conv to ``depth`` channels; then, per scale s, two 3x3 convs at ``depth * 2**s``
channels with LeakyReLU(0.2) (InstanceNorm before each activation when ``instance_norm``, as AMR
does), then 2x2 average pooling; then a 3x3 conv at ``depth * 2**scales`` with the activation and a
3x3 conv to ``latent`` channels with none. The code is a spatial map ``(latent, s, s)`` with
``s = size / 2**scales``; ``scales`` defaults to ``log2(size) - 2``, a 4x4 code.

Decoder: the mirror image, with nearest-neighbour upsampling; it reads the code shape from the
build context, so it needs no ``latent`` or ``scales`` of its own. The output is linear (data in
the data's range) or logits (for a BCE reconstruction, with data in [0, 1]).

Critic body: the encoder's trunk (no normalisation by default) ending in a 3x3 conv to
``features`` channels, flattened: ``(B, features * s * s)``. It holds no spectral norm: the
regularizer that owns the critic applies it to every Conv/Linear layer, and adds its own heads.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
from torch import Tensor, nn

from mixframe import BuildContext, Component, Decoder, Discriminator, Encoder, MixframeError, hookimpl, param, positive

SLOPE = 0.2


@attrs.frozen(kw_only=True)
class ConvEncoderConfig:
    depth: int = param(16, help="channels after the first 1x1 conv; scale s uses depth * 2**s", validator=positive)
    latent: int = param(16, help="channels of the code map (code size = latent * s * s; ACAI: 2 for 32-d, 16 for 256-d at 32 px)",
                        validator=positive)
    scales: int | None = param(None, help="number of 2x downsamplings; null = log2(size) - 2, a 4x4 code", validator=positive)
    instance_norm: bool = param(True, help="InstanceNorm before each LeakyReLU (AMR's variant of the ACAI network)")


@attrs.frozen(kw_only=True)
class ConvDecoderConfig:
    depth: int = param(16, help="channels at the finest scale; scale s uses depth * 2**s (match the encoder's)", validator=positive)
    instance_norm: bool = param(True, help="InstanceNorm before each LeakyReLU")
    output: Literal["linear", "logits"] = param("linear", help="linear output in the data's range, or logits for a BCE reconstruction")


@attrs.frozen(kw_only=True)
class ConvDiscriminatorConfig:
    depth: int = param(16, help="channels after the first 1x1 conv; scale s uses depth * 2**s", validator=positive)
    scales: int | None = param(None, help="number of 2x downsamplings; null = log2(size) - 2", validator=positive)
    features: int = param(16, help="channels of the last conv; the body outputs this map flattened (features * s * s)", validator=positive)
    instance_norm: bool = param(False, help="InstanceNorm before each LeakyReLU (off by default for a critic)")


def image_size(context: BuildContext, who: str) -> tuple[int, int]:
    """(channels, size) of the context's data, which must be a square power-of-two image of 16..128 px."""
    shape = context.data.shape
    if len(shape) != 3:
        raise MixframeError(f"{who} needs images (C, H, W) but the dataset's examples have shape {shape}; "
                            "use the 'mlp' network for vectors")
    channels, height, width = shape
    if height != width or height not in (16, 32, 64, 128):
        raise MixframeError(f"{who} needs square images of 16, 32, 64 or 128 px, got {height}x{width}; "
                            "resize the data (most datasets have a 'size' option)")
    return channels, height


def resolve_scales(scales: int | None, size: int, who: str) -> int:
    """The number of downsamplings: the configured one, or log2(size) - 2 (a 4x4 code)."""
    most = int(math.log2(size)) - 1
    if scales is None:
        return most - 1
    if scales > most:
        raise MixframeError(f"{who}: scales={scales} is too many for {size} px images "
                            f"(at most {most}, which leaves a 2x2 map); lower 'scales'")
    return scales


def conv_block(c_in: int, c_out: int, instance_norm: bool) -> list[nn.Module]:
    """A 3x3 conv, optional InstanceNorm, LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    if instance_norm:
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    layers.append(nn.LeakyReLU(SLOPE))
    return layers


def trunk(channels: int, depth: int, scales: int, instance_norm: bool) -> tuple[list[nn.Module], int]:
    """The shared downsampling trunk of the encoder and the critic, and its output channels."""
    layers: list[nn.Module] = [nn.Conv2d(channels, depth, 1)]
    c = depth
    for s in range(scales):
        width = depth << s
        layers += conv_block(c, width, instance_norm) + conv_block(width, width, instance_norm)
        layers.append(nn.AvgPool2d(2))
        c = width
    layers += conv_block(c, depth << scales, instance_norm)
    return layers, depth << scales


class ConvEncoder(Encoder):
    """Images (B, C, N, N) to code maps (B, latent, N / 2**scales, N / 2**scales)."""

    def __init__(self, config: ConvEncoderConfig, context: BuildContext) -> None:
        super().__init__()
        channels, size = image_size(context, "encoder 'conv'")
        scales = resolve_scales(config.scales, size, "encoder 'conv'")
        layers, c = trunk(channels, config.depth, scales, config.instance_norm)
        self.net = nn.Sequential(*layers, nn.Conv2d(c, config.latent, 3, padding=1))
        side = size >> scales
        self.code_shape = (config.latent, side, side)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(Decoder):
    """Code maps (B, latent, s, s) back to images (B, C, N, N), mirroring the encoder."""

    def __init__(self, config: ConvDecoderConfig, context: BuildContext) -> None:
        super().__init__()
        channels, size = image_size(context, "decoder 'conv'")
        code = tuple(context.code_shape)
        ratio = size // code[1] if len(code) == 3 and code[1] >= 1 else 0
        if len(code) != 3 or code[1] != code[2] or ratio * code[1] != size or ratio & (ratio - 1):
            raise MixframeError(f"decoder 'conv' needs a square code map (C, s, s) with s dividing {size} by a power of two, "
                                f"got code shape {code}; use the 'conv' encoder (or one with a spatial code)")
        scales = int(math.log2(ratio))
        layers: list[nn.Module] = []
        c = code[0]
        for s in reversed(range(scales)):
            width = config.depth << s
            layers += conv_block(c, width, config.instance_norm) + conv_block(width, width, config.instance_norm)
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            c = width
        layers += conv_block(c, config.depth, config.instance_norm)
        layers.append(nn.Conv2d(config.depth, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.outputs_logits = config.output == "logits"

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class ConvDiscriminator(Discriminator):
    """Images (B, C, N, N) to features (B, features * s * s): the encoder's trunk, flattened."""

    def __init__(self, config: ConvDiscriminatorConfig, context: BuildContext) -> None:
        super().__init__()
        channels, size = image_size(context, "discriminator 'conv'")
        scales = resolve_scales(config.scales, size, "discriminator 'conv'")
        layers, c = trunk(channels, config.depth, scales, config.instance_norm)
        self.net = nn.Sequential(*layers, nn.Conv2d(c, config.features, 3, padding=1))
        side = size // 2**scales
        self.out_features = config.features * side * side

    def forward(self, x: Tensor) -> Tensor:
        # Flattened, not averaged over positions: with spectral norm, averaging shrinks the critic's
        # input-dependent output so much that it learns only the base rate (measured on digits).
        return self.net(x).flatten(1)


def _encoders() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="encoder", name="conv", implementation=ConvEncoder, config=ConvEncoderConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=(),
                      summary="ACAI/AMR conv encoder for square 16-128 px images; spatial code (latent, s, s)")]


def _decoders() -> list[Component]:
    from mixframe.kernel.registry_types import Provides, Requires

    outputs = (Provides("logits_decoder", when=lambda c: c.output == "logits", setting="output: logits"),
               Provides("linear_decoder", when=lambda c: c.output == "linear", setting="output: linear"))
    return [Component(kind="decoder", name="conv", implementation=ConvDecoder, config=ConvDecoderConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=outputs,
                      summary="ACAI/AMR conv decoder (nearest upsampling), linear or logit output")]


def _discriminators() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="discriminator", name="conv", implementation=ConvDiscriminator, config=ConvDiscriminatorConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=("critic",),
                      summary="ACAI/AMR conv critic body: encoder trunk, last conv map flattened")]


@hookimpl
def mixframe_components() -> list[Component]:
    return [*_encoders(), *_decoders(), *_discriminators()]
