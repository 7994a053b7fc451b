"""The beta-VAE convolutional encoder/decoder of Burgess et al. (2018), used as a plain autoencoder.

AMR's dSprites experiments use this network deterministically: the encoder's last layer outputs
the code itself (no mean/log-variance pair, no sampling). For 64x64 images: four 4x4 stride-2
convs with ``channels`` maps (64 -> 32 -> 16 -> 8 -> 4), two ReLU dense layers of ``hidden``
units, and a dense layer to ``latent`` (10). The decoder mirrors it with transposed convs and
outputs logits by default (dSprites is binary and trained with BCE). Other square power-of-two
sizes from 32 to 128 px use log2(size) - 2 stride-2 layers, so the last map is always 4x4.

The critic body is the same conv trunk (LeakyReLU(0.2), as usual for a critic) and one dense
layer to ``features``: ``(B, features)``. The regularizer adds heads and spectral norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import attrs
from torch import Tensor, nn

from mixframe import BuildContext, Component, Decoder, Discriminator, Encoder, MixframeError, hookimpl, param, positive


@attrs.frozen(kw_only=True)
class BetaVaeEncoderConfig:
    latent: int = param(10, help="size of the code vector (10 in Burgess et al. and AMR's dSprites runs)", validator=positive)
    channels: int = param(32, help="feature maps of every conv layer", validator=positive)
    hidden: int = param(256, help="units of the two dense layers", validator=positive)


@attrs.frozen(kw_only=True)
class BetaVaeDecoderConfig:
    channels: int = param(32, help="feature maps of every transposed conv layer", validator=positive)
    hidden: int = param(256, help="units of the two dense layers", validator=positive)
    output: Literal["linear", "logits"] = param("logits", help="logits for a BCE reconstruction (data in [0, 1]), or linear")


@attrs.frozen(kw_only=True)
class BetaVaeDiscriminatorConfig:
    channels: int = param(32, help="feature maps of every conv layer", validator=positive)
    features: int = param(256, help="units of the dense layer after the convs: the body's output size", validator=positive)


def layout(context: BuildContext, who: str) -> tuple[int, int]:
    """(image channels, number of stride-2 layers) for the context's data."""
    shape = context.data.shape
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in (32, 64, 128):
        raise MixframeError(f"{who} needs square images of 32, 64 or 128 px (64 in Burgess et al.), got examples of shape {shape}; "
                            "resize the data or use the 'conv' network")
    return shape[0], int(math.log2(shape[1])) - 2


def conv_trunk(c_in: int, channels: int, layers: int, activation: Callable[[], nn.Module]) -> list[nn.Module]:
    """Stride-2 4x4 convs halving the size each time, each followed by the activation."""
    out: list[nn.Module] = []
    for i in range(layers):
        out += [nn.Conv2d(c_in if i == 0 else channels, channels, 4, stride=2, padding=1),
                activation()]
    return out


class BetaVaeEncoder(Encoder):
    """Images (B, C, N, N) to codes (B, latent)."""

    def __init__(self, config: BetaVaeEncoderConfig, context: BuildContext) -> None:
        super().__init__()
        c_in, layers = layout(context, "encoder 'betavae'")
        self.net = nn.Sequential(
            *conv_trunk(c_in, config.channels, layers, nn.ReLU), nn.Flatten(),
            nn.Linear(config.channels * 16, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.latent),
        )
        self.code_shape = (config.latent,)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BetaVaeDecoder(Decoder):
    """Codes (B, latent) back to images (B, C, N, N)."""

    def __init__(self, config: BetaVaeDecoderConfig, context: BuildContext) -> None:
        super().__init__()
        c_out, layers = layout(context, "decoder 'betavae'")
        if len(context.code_shape) != 1:
            raise MixframeError(f"decoder 'betavae' needs a vector code (latent,), got code shape {tuple(context.code_shape)}; "
                                "use the 'betavae' encoder")
        c = config.channels
        ups: list[nn.Module] = []
        for i in range(layers):
            last = i == layers - 1
            ups.append(nn.ConvTranspose2d(c, c_out if last else c, 4, stride=2, padding=1))
            if not last:
                ups.append(nn.ReLU())
        self.net = nn.Sequential(
            nn.Linear(context.code_shape[0], config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, c * 16), nn.ReLU(),
            nn.Unflatten(1, (c, 4, 4)), *ups,
        )
        self.outputs_logits = config.output == "logits"

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class BetaVaeDiscriminator(Discriminator):
    """Images (B, C, N, N) to features (B, features)."""

    def __init__(self, config: BetaVaeDiscriminatorConfig, context: BuildContext) -> None:
        super().__init__()
        c_in, layers = layout(context, "discriminator 'betavae'")
        self.net = nn.Sequential(*conv_trunk(c_in, config.channels, layers, lambda: nn.LeakyReLU(0.2)), nn.Flatten(),
                                 nn.Linear(config.channels * 16, config.features), nn.LeakyReLU(0.2))
        self.out_features = config.features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _encoders() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="encoder", name="betavae", implementation=BetaVaeEncoder, config=BetaVaeEncoderConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=(),
                      summary="Burgess et al. beta-VAE conv encoder, deterministic, code (latent,) (dSprites)")]


def _decoders() -> list[Component]:
    from mixframe.kernel.registry_types import Provides, Requires

    outputs = (Provides("logits_decoder", when=lambda c: c.output == "logits", setting="output: logits"),
               Provides("linear_decoder", when=lambda c: c.output == "linear", setting="output: linear"))
    return [Component(kind="decoder", name="betavae", implementation=BetaVaeDecoder, config=BetaVaeDecoderConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=outputs,
                      summary="Burgess et al. beta-VAE transposed-conv decoder, logits output by default")]


def _discriminators() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="discriminator", name="betavae", implementation=BetaVaeDiscriminator, config=BetaVaeDiscriminatorConfig,
                      requires=(Requires("image_data", "it is a convolutional network"),), provides=("critic",),
                      summary="beta-VAE conv trunk as a critic body, outputs (B, features)")]


@hookimpl
def mixframe_components() -> list[Component]:
    return [*_encoders(), *_decoders(), *_discriminators()]
