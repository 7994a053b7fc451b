"""The built-in networks: shapes, code shapes, the decoder matching the encoder, errors, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixframe import BuildContext, DataSpec, MixframeError
from mixframe_plugins.networks import betavae, conv, mlp


def ctx(shape: tuple[int, ...], code_shape: tuple[int, ...] = ()) -> BuildContext:
    return BuildContext(data=DataSpec(shape=shape), code_shape=code_shape)


@pytest.mark.parametrize(("size", "code_side"), [(16, 4), (32, 4), (64, 4)])
def test_conv_autoencoder_shapes_and_round_trip(size: int, code_side: int) -> None:
    enc = conv.ConvEncoder(conv.ConvEncoderConfig(depth=4, latent=3), ctx((3, size, size)))
    assert enc.code_shape == (3, code_side, code_side)
    x = torch.randn(2, 3, size, size)
    h = enc(x)
    assert h.shape == (2, *enc.code_shape)
    dec = conv.ConvDecoder(conv.ConvDecoderConfig(depth=4), ctx((3, size, size), enc.code_shape))
    assert dec(h).shape == x.shape
    assert not dec.outputs_logits


def test_conv_scales_option_sets_code_size_and_decoder_follows() -> None:
    enc = conv.ConvEncoder(conv.ConvEncoderConfig(depth=2, latent=5, scales=2), ctx((1, 32, 32)))
    assert enc.code_shape == (5, 8, 8)
    dec = conv.ConvDecoder(conv.ConvDecoderConfig(depth=2, output="logits"), ctx((1, 32, 32), enc.code_shape))
    assert dec(enc(torch.randn(2, 1, 32, 32))).shape == (2, 1, 32, 32)
    assert dec.outputs_logits
    assert torch.all((dec.to_data(torch.randn(4)) > 0) & (dec.to_data(torch.randn(4)) < 1))


def test_conv_layer_layout_follows_acai() -> None:
    enc = conv.ConvEncoder(conv.ConvEncoderConfig(depth=4, latent=2), ctx((1, 32, 32)))
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    # 1x1 conv, two 3x3 per scale (3 scales), a 3x3 at depth*2^3, a 3x3 to latent.
    assert [m.kernel_size[0] for m in convs] == [1] + [3] * 8
    assert [m.out_channels for m in convs] == [4, 4, 4, 8, 8, 16, 16, 32, 2]
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in enc.modules()) == 7
    assert sum(isinstance(m, nn.AvgPool2d) for m in enc.modules()) == 3


@pytest.mark.parametrize("shape", [(1, 32, 16), (1, 24, 24), (1, 8, 8), (1, 256, 256), (2,)])
def test_conv_rejects_unsupported_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(MixframeError, match="conv"):
        conv.ConvEncoder(conv.ConvEncoderConfig(), ctx(shape))
    with pytest.raises(MixframeError):
        conv.ConvDiscriminator(conv.ConvDiscriminatorConfig(), ctx(shape))


def test_conv_rejects_too_many_scales_and_mismatched_codes() -> None:
    with pytest.raises(MixframeError, match="scales"):
        conv.ConvEncoder(conv.ConvEncoderConfig(scales=4), ctx((1, 16, 16)))
    with pytest.raises(MixframeError, match="code shape"):
        conv.ConvDecoder(conv.ConvDecoderConfig(), ctx((1, 32, 32), (10,)))
    with pytest.raises(MixframeError, match="code shape"):
        conv.ConvDecoder(conv.ConvDecoderConfig(), ctx((1, 32, 32), (4, 3, 3)))


def test_conv_discriminator_features_and_no_normalisation_by_default() -> None:
    disc = conv.ConvDiscriminator(conv.ConvDiscriminatorConfig(depth=4, features=7), ctx((3, 32, 32)))
    out = disc(torch.randn(5, 3, 32, 32))
    assert out.shape == (5, 7 * 4 * 4) and disc.out_features == 7 * 4 * 4  # the 4x4 map, flattened
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in disc.modules())
    assert not any(hasattr(m, "weight_orig") for m in disc.modules())  # spectral norm is the regularizer's job


def test_conv_gradients_reach_every_parameter() -> None:
    c = ctx((1, 16, 16))
    enc = conv.ConvEncoder(conv.ConvEncoderConfig(depth=2, latent=2), c)
    dec = conv.ConvDecoder(conv.ConvDecoderConfig(depth=2), ctx((1, 16, 16), enc.code_shape))
    disc = conv.ConvDiscriminator(conv.ConvDiscriminatorConfig(depth=2, features=3), c)
    x = torch.randn(3, 1, 16, 16)
    (dec(enc(x)) - x).abs().mean().add(disc(x).sum()).backward()
    for module in (enc, dec, disc):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mlp_shapes_round_trip_and_gradients() -> None:
    c = ctx((2,))
    enc = mlp.MlpEncoder(mlp.MlpEncoderConfig(hidden=(8, 6), latent=3, activation="elu"), c)
    assert enc.code_shape == (3,)
    dec = mlp.MlpDecoder(mlp.MlpDecoderConfig(hidden=(8, 6), activation="leaky_relu"), ctx((2,), enc.code_shape))
    disc = mlp.MlpDiscriminator(mlp.MlpDiscriminatorConfig(hidden=(8, 5)), c)
    x = torch.randn(4, 2)
    h = enc(x)
    assert h.shape == (4, 3) and dec(h).shape == (4, 2)
    assert disc(x).shape == (4, 5) and disc.out_features == 5
    # the decoder uses the hidden sizes in reverse: latent -> 6 -> 8 -> 2
    assert [m.out_features for m in dec.modules() if isinstance(m, nn.Linear)] == [6, 8, 2]
    (dec(h) - x).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in [*enc.parameters(), *dec.parameters()])


def test_mlp_rejects_images_and_spatial_codes() -> None:
    with pytest.raises(MixframeError, match="vector"):
        mlp.MlpEncoder(mlp.MlpEncoderConfig(), ctx((1, 16, 16)))
    with pytest.raises(MixframeError, match="code shape"):
        mlp.MlpDecoder(mlp.MlpDecoderConfig(), ctx((2,), (2, 4, 4)))


@pytest.mark.parametrize("size", [32, 64])
def test_betavae_shapes_round_trip_and_gradients(size: int) -> None:
    # seeded: with 4 channels and a batch of 2, some draws leave a ReLU unit dead (a zero gradient) whatever the code
    torch.manual_seed(0)
    c = ctx((1, size, size))
    enc = betavae.BetaVaeEncoder(betavae.BetaVaeEncoderConfig(channels=4, hidden=16), c)
    assert enc.code_shape == (10,)
    dec = betavae.BetaVaeDecoder(betavae.BetaVaeDecoderConfig(channels=4, hidden=16), ctx((1, size, size), enc.code_shape))
    assert dec.outputs_logits
    disc = betavae.BetaVaeDiscriminator(betavae.BetaVaeDiscriminatorConfig(channels=4, features=9), c)
    x = torch.rand(2, 1, size, size)
    h = enc(x)
    assert h.shape == (2, 10)
    out = dec(h)
    assert out.shape == x.shape
    assert disc(x).shape == (2, 9) and disc.out_features == 9
    nn.functional.binary_cross_entropy_with_logits(out, x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in [*enc.parameters(), *dec.parameters()])


def test_betavae_has_burgess_layout_at_64px() -> None:
    enc = betavae.BetaVaeEncoder(betavae.BetaVaeEncoderConfig(), ctx((1, 64, 64)))
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(m.stride == (2, 2) and m.out_channels == 32 for m in convs)
    assert [m.out_features for m in enc.modules() if isinstance(m, nn.Linear)] == [256, 256, 10]


def test_betavae_rejects_other_shapes() -> None:
    with pytest.raises(MixframeError, match="betavae"):
        betavae.BetaVaeEncoder(betavae.BetaVaeEncoderConfig(), ctx((1, 48, 48)))
    with pytest.raises(MixframeError, match="code shape"):
        betavae.BetaVaeDecoder(betavae.BetaVaeDecoderConfig(), ctx((1, 64, 64), (16, 4, 4)))
