"""The contract suite that plugin authors reuse (mixframe.testing): on the built-in components, on components
registered in-process (a spatial mask mixer, a penalty on the codes alone), and on mixers it must reject."""

from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Mixer, MixframeError, MixResult, Regularizer, Step, blend, hookimpl, in_range, param
from mixframe.kernel.registry import Registry
from mixframe.testing import CallbackContract, DatasetContract, LauncherContract, MetricContract, MixerContract, RegularizerContract
from mixframe_plugins.mixers.slerp import SlerpConfig, SlerpMixer


class TestMixup(MixerContract):
    name = "mixup"


class TestMixupPerChannel(MixerContract):
    name = "mixup"
    params = {"per_channel": True, "fold": True}


class TestBernoulli(MixerContract):
    name = "bernoulli"
    params = {"sampler": "per_example"}


class TestKway(MixerContract):
    name = "kway"
    params = {"k": 4, "mode": "bernoulli"}


class TestNone(MixerContract):
    name = "none"


class TestClassMixer(MixerContract):
    name = "class_mixer"


class TestSlerp(MixerContract):  # not a convex blend: its own combine, checked at both ends
    name = "slerp"


class TestWganGp(RegularizerContract):  # its own critic steps and Adam betas
    name = "wgan_gp"


class TestAdversarial(RegularizerContract):
    name = "adversarial"


class TestConsistency(RegularizerContract):
    name = "consistency"


class TestAcai(RegularizerContract):
    name = "acai"


# ---------------------------------------------------------------------------------------------
# Third-party components registered in-process: a spatial mask mixer and a penalty on the codes alone.

@attrs.frozen(kw_only=True)
class CutMixConfig:
    """No parameters."""


class LatentCutMix(Mixer):
    """A rectangle of positions comes from the second source, the same for every channel: weights vary over positions."""

    def __init__(self, config: CutMixConfig, context: BuildContext) -> None:
        super().__init__()

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h, h2 = sources
        if h.dim() != 4:
            raise MixframeError(f"latent_cutmix needs codes (B, C, H, W), got {tuple(h.shape)}")
        batch, _, height, width = h.shape

        def span(size: int) -> Tensor:  # (B, size): True inside a random interval of at least one position
            start = torch.randint(0, size, (batch, 1), device=h.device)
            length = torch.randint(1, size + 1, (batch, 1), device=h.device)
            index = torch.arange(size, device=h.device)
            return (index >= start) & (index < start + length)

        box = (span(height)[:, :, None] & span(width)[:, None, :]).to(h.dtype)  # (B, H, W)
        second = box[:, None].expand_as(h)  # the same rectangle for every channel
        weights = torch.stack([1 - second, second], dim=1)  # (B, 2, C, H, W)
        return MixResult(codes=blend([h, h2], weights), weights=weights, extras={"area": box.mean(dim=(1, 2))})


@attrs.frozen(kw_only=True)
class CodePenaltyConfig:
    weight: float = param(0.1, help="weight of mean h^2, a penalty on the codes alone", validator=in_range(0, None))


class CodePenalty(Regularizer):
    """weight * mean h^2: its term reaches the encoder only."""

    gradient_targets = ("encoder",)

    def __init__(self, config: CodePenaltyConfig, context: BuildContext) -> None:
        super().__init__()
        self.weight = config.weight

    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]:
        return {"code_l2": self.weight * step.h.pow(2).mean()}


class Broken(Mixer):
    """A mixer that gets one thing wrong, chosen by ``fault``."""

    fault = ""

    def __init__(self, config: CutMixConfig, context: BuildContext) -> None:
        super().__init__()

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h, h2 = sources
        alpha = torch.rand(h.shape[0], h.shape[1])
        weights = torch.stack([alpha, 1 - alpha], dim=1)
        codes = blend([h, h2], weights)
        if self.fault == "shape":
            weights = weights[:, :, :1]  # one weight per source: (B, k, 1)
        elif self.fault == "sum":
            weights = weights * 0.8
        elif self.fault == "codes":
            codes = 0.5 * h + 0.5 * h2
        return MixResult(codes=codes, weights=weights)


class WrongShape(Broken):
    fault = "shape"


class NotNormalised(Broken):
    fault = "sum"


class NotTheBlend(Broken):
    fault = "codes"


class InProcessPlugin:
    """Hooks of a plugin that is not installed, as a test module may register it."""

    @staticmethod
    @hookimpl
    def mixframe_components() -> list[Component]:
        def mixer(name: str, impl: type) -> Component:
            return Component(kind="mixer", name=name, implementation=impl, config=CutMixConfig, summary=impl.__doc__ or name)

        return [mixer("latent_cutmix", LatentCutMix), mixer("wrong_shape", WrongShape), mixer("not_normalised", NotNormalised),
                mixer("not_the_blend", NotTheBlend),
                Component(kind="regularizer", name="code_penalty", implementation=CodePenalty, config=CodePenaltyConfig,
                          summary="weight * mean h^2 on the codes")]


REGISTRY = Registry(autoload=False, plugins=[("in_process", InProcessPlugin)])


class TestLatentCutMix(MixerContract):
    registry = REGISTRY
    name = "latent_cutmix"


class TestCodePenalty(RegularizerContract):
    registry = REGISTRY
    name = "code_penalty"


def test_cutmix_weights_vary_over_positions_but_not_channels() -> None:
    torch.manual_seed(0)
    result = LatentCutMix(CutMixConfig(), BuildContext(data=MixerContract.data, code_shape=(8, 4, 4)))(
        [torch.randn(6, 8, 4, 4), torch.randn(6, 8, 4, 4)])
    second = result.weights[:, 1]
    assert result.weights.shape == (6, 2, 8, 4, 4)
    assert bool((second == second[:, :1]).all())  # one rectangle for all channels
    assert bool((second.flatten(1).amax(1) == 1).all()) and 0 < second.mean() < 1


def test_the_code_penalty_fails_a_contract_that_expects_the_decoder() -> None:
    class ExpectsDecoder(RegularizerContract):
        registry = REGISTRY
        name = "code_penalty"

        def build(self) -> Regularizer:
            reg = super().build()
            reg.gradient_targets = ("decoder",)
            return reg

    with pytest.raises(AssertionError, match=r"no gradient from autoencoder_loss reaches the decoder's parameters.*\('encoder',\)"):
        ExpectsDecoder().test_autoencoder_terms_are_finite_and_reach_the_declared_modules()


@pytest.mark.parametrize(("name", "method", "message"), [
    ("wrong_shape", "test_weights_are_a_distribution_over_sources",
     r"MixResult.weights has shape \(6, 2, 1\); it must be \(B, k, C\) = \(6, 2, 8\).*\(B, k, \*code_shape\) = \(6, 2, 8, 4, 4\)"),
    ("wrong_shape", "test_codes_are_the_mix_their_weights_describe", r"MixResult.weights has shape \(6, 2, 1\)"),
    ("not_normalised", "test_weights_are_a_distribution_over_sources", r"away from 1; they must sum to 1"),
    ("not_the_blend", "test_codes_are_the_mix_their_weights_describe", r"differ from blend\(sources, weights\).*mixframe.blend"),
])
def test_a_broken_mixer_fails_the_contract_with_a_helpful_message(name: str, method: str, message: str) -> None:
    contract = type("Contract", (MixerContract,), {"registry": REGISTRY, "name": name})()
    with pytest.raises(AssertionError, match=message):
        getattr(contract, method)()


def test_blend_broadcasts_per_map_weights_and_takes_per_position_ones() -> None:
    h, h2 = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    per_map = torch.stack([torch.full((3, 2), 0.25), torch.full((3, 2), 0.75)], dim=1)
    torch.testing.assert_close(blend([h, h2], per_map), 0.25 * h + 0.75 * h2)
    mask = (torch.rand(3, 2, 4, 4) > 0.5).float()
    torch.testing.assert_close(blend([h, h2], torch.stack([mask, 1 - mask], dim=1)), torch.where(mask.bool(), h, h2))
    with pytest.raises(ValueError, match="k=2"):
        blend([h, h2], per_map[:, :1])


def test_slerp_keeps_unit_codes_on_the_sphere_where_a_blend_falls_inside() -> None:
    mixer = SlerpMixer(SlerpConfig(), BuildContext(data=MixerContract.data, code_shape=(2,)))
    h, h2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    half = torch.tensor([[[0.5], [0.5]]]).expand(1, 2, 2)
    mid = mixer.combine([h, h2], half)
    torch.testing.assert_close(mid, torch.tensor([[2**-0.5, 2**-0.5]]))  # the arc's midpoint, norm 1
    assert float(blend([h, h2], half).norm()) == pytest.approx(2**-0.5)  # the convex blend's midpoint, norm 0.71
    parallel = mixer.combine([h, 2 * h], half)  # no angle: the linear limit
    torch.testing.assert_close(parallel, 1.5 * h)


def test_a_mixer_that_is_not_a_blend_fails_the_contract_unless_it_declares_its_own_combine() -> None:
    class Undeclared(SlerpMixer):
        combine = Mixer.combine  # the codes are slerps, but the mixer claims the default convex blend

        def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
            result = super().forward(sources, labels)
            return MixResult(codes=SlerpMixer.combine(self, sources, result.weights), weights=result.weights)

    reg = Registry(autoload=False, plugins=[("undeclared", type("P", (), {"mixframe_components": staticmethod(hookimpl(
        lambda: [Component(kind="mixer", name="undeclared_slerp", implementation=Undeclared, config=SlerpConfig,
                           summary="a slerp that does not say so")]))}))])
    contract = type("Contract", (MixerContract,), {"registry": reg, "name": "undeclared_slerp"})()
    with pytest.raises(AssertionError, match=r"differ from blend\(sources, weights\).*override Mixer.combine"):
        contract.test_codes_are_the_mix_their_weights_describe()
    declared = type("Contract", (MixerContract,), {"name": "slerp"})()
    declared.test_codes_are_the_mix_their_weights_describe()
    declared.test_a_one_hot_weight_gives_back_that_source()


class TestSpiral(DatasetContract):
    name = "spiral"
    params = {"n_train": 64, "n_val": 16, "n_test": 16}


class TestDigits(DatasetContract):
    name = "digits"


class TestLines(DatasetContract):
    name = "lines"
    params = {"n_train": 64, "n_val": 16, "n_test": 16}


class TestDSprites(DatasetContract):
    name = "dsprites"
    params = {"size": 32, "n_train": 64, "n_val": 16, "n_test": 16}


class TestFaces(DatasetContract):
    name = "faces"
    params = {"size": 16}


class TestImageFolder(DatasetContract):
    name = "image_folder"

    @pytest.fixture(autouse=True)
    def _pictures(self, tmp_path: Path) -> None:
        from PIL import Image

        for i in range(6):
            Image.new("RGB", (12, 10), (40 * i, 20, 200 - 30 * i)).save(tmp_path / f"p{i}.png")
        self.params = {"root": str(tmp_path), "size": 8, "val_fraction": 0.2, "test_fraction": 0.2}


class TestReconstructionMetric(MetricContract):
    name = "reconstruction"


class TestManifoldMetric(MetricContract):
    name = "manifold"


class TestProbeMetric(MetricContract):  # needs class labels: a tiny digits run
    name = "probe"
    recipe = "digits_ae"
    overrides = ("train.epochs=1", "train.max_steps=2", "encoder.depth=4", "decoder.depth=4", "callbacks=[]")


class TestStallWatch(CallbackContract):
    name = "stall_watch"


class TestTrainingPictures(CallbackContract):
    name = "training_pictures"
    params = {"every": 1}


class TestValidation(CallbackContract):
    name = "validation"


class TestTensorBoardHparams(CallbackContract):
    name = "tensorboard_hparams"


@pytest.mark.slow
class TestLocalLauncher(LauncherContract):
    name = "local"
    params = {"jobs": 2, "threads": 1}
