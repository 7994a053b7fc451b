"""A Wasserstein critic with a gradient penalty (WGAN-GP, Gulrajani et al. 2017) on reconstructions and/or mixes.

The critic D scores data (higher = more like real data, no sigmoid). Its loss, minimised, is the
negative Wasserstein estimate ``mean D(fake) - mean D(real)`` (term ``d_wasserstein``, averaged over
the kinds of fake it judges) plus ``gp_weight * mean (||grad D(x_hat)|| - 1)^2`` at random points
``x_hat`` between each real example and a fake (term ``d_gp``). The autoencoder adds
``-weight * mean D(fake)`` per kind judged (``g_rec``, ``g_mix``).

The critic owns its training settings (``Regularizer.critic_settings``), as the method needs and the
recipe's global ``train.*`` values do not give: ``n_critic`` optimizer steps per autoencoder update
and Adam with ``betas`` (0, 0.9) and its own ``lr`` (null: the recipe's ``train.critic_lr``). Other
critics in the same recipe keep the recipe's schedule. No spectral norm and no batch norm in the
critic body: the penalty is what bounds its slope.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from mixframe import (
    BuildContext,
    Component,
    CriticSettings,
    MixframeError,
    Regularizer,
    Requires,
    Step,
    hookimpl,
    in_range,
    param,
    positive,
)
from mixframe_plugins.regularizers._critic import TARGETS, build_body, check_judge


@attrs.frozen(kw_only=True)
class WganGpConfig:
    judge: tuple[str, ...] = param(TARGETS, help="what the critic judges as fake: reconstruction, mix, or both", validator=check_judge)
    weight: float = param(1.0, help="weight of the generator's terms -D(fake) in the autoencoder loss", validator=in_range(0, None))
    gp_weight: float = param(10.0, help="weight of the gradient penalty (lambda)", validator=in_range(0, None))
    n_critic: int = param(5, help="critic optimizer steps per autoencoder update", validator=positive)
    lr: float | None = param(None, help="the critic's Adam learning rate; null means train.critic_lr (or train.lr)", validator=positive)
    betas: tuple[float, float] = param((0.0, 0.9), help="the critic's Adam betas")


class WganGpRegularizer(Regularizer):
    """A Wasserstein critic with a gradient penalty, trained on its own schedule and optimizer settings."""

    gradient_targets = ("encoder", "decoder")  # reconstructions and mixes are decoded codes

    def __init__(self, config: WganGpConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.body = build_body(context, "wgan_gp")
        self.head = nn.Linear(self.body.out_features, 1)

    def critic_score(self, x: Tensor) -> Tensor:
        """D(x) per example, higher = judged real (:class:`mixframe.kernel.interfaces.ScoresData`)."""
        return self.head(self.body(x)).squeeze(1)

    def _fakes(self, step: Step) -> dict[str, Tensor]:
        fakes = {}
        if "reconstruction" in self.config.judge:
            fakes["rec"] = step.x_rec
        if "mix" in self.config.judge:
            if step.x_mix is None:
                raise MixframeError("wgan_gp with judge: [..., mix] needs decoded mixes; use a mixer other than none, "
                                    "or set judge: [reconstruction]")
            fakes["mix"] = step.x_mix
        return fakes

    def _penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic_score(x_hat).sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def critic_loss(self, step: Step) -> dict[str, Tensor]:
        real = step.x.detach()
        fakes = {k: v.detach() for k, v in self._fakes(step).items()}
        score_real = self.critic_score(real).mean()
        wasserstein = sum(self.critic_score(f).mean() for f in fakes.values()) / len(fakes) - score_real
        penalty = sum(self._penalty(real, f) for f in fakes.values()) / len(fakes)
        return {"d_wasserstein": wasserstein, "d_gp": self.config.gp_weight * penalty}

    def critic_chance(self) -> dict[str, float]:
        """A critic that learns nothing scores every input alike: no Wasserstein gap, and a zero slope, so the full penalty."""
        return {"d_wasserstein": 0.0, "d_gp": self.config.gp_weight}

    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]:
        return {f"g_{k}": -self.config.weight * self.critic_score(f).mean() for k, f in self._fakes(step).items()}

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def critic_settings(self) -> CriticSettings:
        return CriticSettings(steps=self.config.n_critic, lr=self.config.lr, betas=tuple(self.config.betas))


@hookimpl
def mixframe_components() -> list[Component]:
    requires = (Requires("mix", "it judges decoded mixes (judge: [..., mix])", when=lambda c: "mix" in c.judge),
                Requires("critic", "it trains a critic"))
    return [Component(kind="regularizer", name="wgan_gp", implementation=WganGpRegularizer, config=WganGpConfig, requires=requires,
                      provides=(), summary="Wasserstein critic with a gradient penalty, its own n_critic steps and Adam betas (0, 0.9)")]
