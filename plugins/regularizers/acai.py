"""ACAI (Berthelot et al., ICLR 2019), the original critic with the gamma term.

A critic d regresses the mixing weight alpha from a decoded mix, and the autoencoder tries to make
its mixes score 0 (alpha = 0 reads as "not a mix"):

* critic: L_d = mean (d(x_mix) - alpha)^2 + mean d(gamma x + (1 - gamma) x_rec)^2
  (terms ``d_mix`` and ``d_blend``; the second keeps d at 0 on near-real data);
* autoencoder: ``weight`` (lambda) * mean d(x_mix)^2 (term ``g_mix``).

d is the recipe's discriminator body plus a linear output (no sigmoid; spectral norm off by default).
alpha is the mixer's weight of the first source, ``mix.weights[:, 0]``, and must be one number
per example (the same for every feature map and position). The ACAI recipe: reconstruction l2
with weight 1, ``mixer: {kind: mixup, fold: true}`` (alpha ~ U(0, 1) folded into [0, 0.5], so the
critic's target is identifiable), lambda 0.5, gamma 0.2, Adam lr 1e-4, batch 64. ACAI pairs each
example with the reversed batch; the engine's random permutation gives the same distribution of
pairs.

Chance level: a constant critic c scores E(c - alpha)^2 + c^2, minimised at c = E[alpha] / 2, where
``d_mix`` = Var(alpha) + (E[alpha] / 2)^2 and ``d_blend`` = (E[alpha] / 2)^2. For folded alpha ~
U(0, 0.5): Var = 1/48, E = 1/4, so d_mix = 1/48 + 1/64 ~ 0.0365 and d_blend = 1/64 ~ 0.0156, in
all 7/192 + 3/192 = 0.0521. ``critic_chance`` uses the moments of the alphas it has seen (the
folded-uniform values before the first step), so it stays right for other mixers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from mixframe import BuildContext, Component, MixframeError, Regularizer, Step, hookimpl, in_range, param
from mixframe_plugins.regularizers._critic import apply_spectral_norm, build_body


@attrs.frozen(kw_only=True)
class AcaiConfig:
    weight: float = param(0.5, help="lambda, the weight of mean d(x_mix)^2 in the autoencoder loss", validator=in_range(0, None))
    gamma: float = param(0.2, help="blend gamma x + (1 - gamma) x_rec on which the critic is trained to output 0",
                         validator=in_range(0, 1))
    spectral_norm: bool = param(False, help="spectral norm on every critic layer (ACAI uses none)")


def _chance_levels(mean: float, mean_sq: float) -> dict[str, float]:
    """Per-term losses of the best constant critic for alphas with these first two moments."""
    c = mean / 2
    return {"d_mix": mean_sq - 2 * c * mean + c * c, "d_blend": c * c}


class AcaiRegularizer(Regularizer):
    """The ACAI critic: regresses the mixing weight from decoded mixes."""

    gradient_targets = ("encoder", "decoder")  # g_mix judges decoded mixes of codes

    def __init__(self, config: AcaiConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.body = build_body(context, "acai")
        self.head = nn.Linear(self.body.out_features, 1)
        if config.spectral_norm:
            apply_spectral_norm(self)
        self._alpha_moments: Tensor | None = None  # running sums of (count, alpha, alpha^2)
        self._checked = False

    def _critic(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).squeeze(1)

    def _alpha(self, step: Step) -> Tensor:
        """One mixing weight per example (B,), the weight of the first source."""
        if step.mix is None or step.x_mix is None:
            raise MixframeError("acai needs decoded mixes: use mixer {kind: mixup, fold: true}")
        weights = step.mix.weights
        if weights.shape[1] != 2:
            raise MixframeError(f"acai needs a two-source mixer (mixup with fold: true), got {weights.shape[1]} sources")
        alpha = weights[:, 0].flatten(1)  # (B, C) or (B, C * positions) for a spatial mask
        if not self._checked:
            if bool(((alpha.amax(dim=1) - alpha.amin(dim=1)) > 1e-6).any()):
                raise MixframeError("acai needs one mixing weight per example: use mixer {kind: mixup, fold: true} "
                                    "with per_channel: false")
            self._checked = True
        return alpha[:, 0]

    def critic_loss(self, step: Step) -> dict[str, Tensor]:
        alpha = self._alpha(step).detach()
        moments = torch.stack([torch.ones_like(alpha).sum(), alpha.sum(), (alpha ** 2).sum()]).double()
        self._alpha_moments = moments if self._alpha_moments is None else self._alpha_moments + moments
        gamma = self.config.gamma
        blend = gamma * step.x + (1 - gamma) * step.x_rec.detach()
        return {
            "d_mix": ((self._critic(step.x_mix.detach()) - alpha) ** 2).mean(),
            "d_blend": (self._critic(blend) ** 2).mean(),
        }

    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]:
        self._alpha(step)  # validates the mixer
        return {"g_mix": self.config.weight * (self._critic(step.x_mix) ** 2).mean()}

    def critic_score(self, x: Tensor) -> Tensor:
        """-d(x), higher = judged real (:class:`mixframe.kernel.interfaces.ScoresData`): d regresses the mixing weight, 0 for real data."""
        return -self._critic(x)

    def critic_chance(self) -> dict[str, float]:
        if self._alpha_moments is None:
            return _chance_levels(0.25, 1 / 12)  # folded alpha ~ U(0, 0.5)
        count, total, total_sq = self._alpha_moments.tolist()
        return _chance_levels(total / count, total_sq / count)

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def training_state(self) -> dict[str, Any]:
        """The alpha moments seen so far (count, sum, sum of squares), so a resumed run's blind-guess levels go on from them."""
        return {} if self._alpha_moments is None else {"alpha_moments": self._alpha_moments.tolist()}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        if "alpha_moments" in state:
            self._alpha_moments = torch.tensor(state["alpha_moments"], dtype=torch.float64, device=self.head.weight.device)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("per_example_weight", "its critic regresses the mixing weight alpha of each decoded mix"),
                Requires("mix", "it judges decoded mixes"),
                Requires("critic", "it trains a critic on decoded mixes"))
    return [Component(kind="regularizer", name="acai", implementation=AcaiRegularizer, config=AcaiConfig, requires=requires, provides=(),
                      summary="ACAI critic regressing the mixing weight alpha from decoded mixes (with the gamma term)")]
