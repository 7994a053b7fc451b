"""The class mixer of supervised AMR: attribute labels decide which feature maps a mix inherits.

For a pair (h, y), (h', y') of codes and binary attribute vectors:

1. ``y_mix`` takes each attribute from one of the two parents: m_y ~ Bernoulli(q) per attribute
   with q ~ U(0, 1) drawn once per example (method notes: "m_y ~ Bernoulli(U(0,1))"), and
   y_mix = m_y y + (1 - m_y) y'. Drawing q per example rather than per attribute matters: a q per
   attribute would make every m_y a fair coin, whereas one q per example also yields mixes that take
   most attributes from one parent.
2. A 3-layer MLP maps y_mix to Bernoulli parameters p = sigmoid(logits) in [0, 1]^C, one per
   feature map. There is deliberately no ReLU before the sigmoid (the authors' code had one, which
   forces p >= 0.5). With ``condition: sources`` the MLP reads m_y instead: y_mix alone cannot say
   which parent holds an attribute when the parents differ, m_y (drawn here anyway) can.
3. m ~ Bernoulli(p) and h_mix = m h + (1 - m) h', broadcast over positions. Sampling needs a
   gradient estimator (``estimator``): straight-through (hard m forward, gradient of p backward),
   a relaxed Bernoulli (Concrete) sample, or the soft mask m = p that the authors' code used.
4. An optional prior eps * mean_b (sum_c m_bc - C/2)^2 pushes half the maps to come from each
   parent; it is returned as ``MixResult.loss``.

The discriminator side (AC-GAN or projection) is the ``adversarial`` regularizer's ``conditional``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from mixframe import BuildContext, Component, Mixer, MixframeError, MixResult, blend, hookimpl, in_range, param, positive


@attrs.frozen(kw_only=True)
class ClassMixerConfig:
    hidden: int | None = param(None, help="width of the MLP's two hidden layers (null: the number of feature maps C)",
                               validator=positive)
    estimator: Literal["straight_through", "relaxed", "soft"] = param(
        "straight_through",
        help="gradient estimator for m ~ Bernoulli(p): straight_through (hard m, gradient of p), "
             "relaxed (RelaxedBernoulli with `temperature`), soft (m = p, as the authors' code did)")
    temperature: float = param(0.5, help="temperature of the relaxed Bernoulli (estimator: relaxed)", validator=positive)
    condition: Literal["y_mix", "sources"] = param(
        "y_mix",
        help="what the mask network sees: y_mix (the paper), or sources, m_y: which parent each attribute is taken from "
             "(1 = the first), so that it can take each attribute's maps from the parent that has it")
    eps: float = param(0.0, help="weight of the mask prior eps * mean_b (sum_c m_bc - C/2)^2 (0 = off)",
                       validator=in_range(0, None))


class ClassMixer(Mixer):
    """Mixes two codes with a mask predicted from the mixed attribute vector."""

    uses_labels = True

    def __init__(self, config: ClassMixerConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        if not context.data.attribute_names:
            raise MixframeError("class_mixer needs a dataset with binary attributes (label_kind attributes), "
                                "e.g. dsprites with labels: attributes")
        if not context.code_shape:
            raise MixframeError("class_mixer needs the code shape (context.code_shape) to size its mask network")
        self.num_attributes = len(context.data.attribute_names)
        self.channels = context.code_shape[0]
        hidden = config.hidden or self.channels
        self.net = nn.Sequential(
            nn.Linear(self.num_attributes, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, self.channels),
        )

    def masks_for(self, condition: Tensor) -> Tensor:
        """Bernoulli parameters p (N, C) for the mask network's inputs (N, A): y_mix, or m_y (Figure 6 of the paper)."""
        return torch.sigmoid(self.net(condition.float()))

    @property
    def mask_condition(self) -> str:
        """What the mask network reads (mixframe.PredictsMasks): "y_mix" or "sources" (m_y)."""
        return self.config.condition

    @property
    def soft_masks(self) -> bool:
        return self.config.estimator == "soft"

    def draw_targets(self, y1: Tensor, y2: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(y_mix, m_y): q ~ U(0, 1) per pair, then each attribute from y1 (m_y = 1) with probability q.

        Drawn on y1's device from ``generator`` when given (a measurement), else from torch's global RNG (training)."""
        q = torch.rand(len(y1), 1, generator=generator, device=y1.device if generator is None else "cpu", dtype=y1.dtype).to(y1.device)
        m_y = torch.bernoulli(q.expand_as(y1).contiguous(), generator=generator)
        return m_y * y1 + (1 - m_y) * y2, m_y

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        if labels is None or len(labels) < 2:
            raise MixframeError("class_mixer needs the labels of both parents; use a dataset with label_kind attributes")
        h, h2 = sources[0], sources[1]
        y, y2 = labels[0].to(h.dtype), labels[1].to(h.dtype)
        if y.dim() != 2 or y.shape[1] != self.num_attributes:
            raise MixframeError(f"class_mixer expects attribute vectors of shape (B, {self.num_attributes}), got {tuple(y.shape)}")
        channels = h.shape[1]
        if channels != self.channels:
            raise MixframeError(f"class_mixer was built for {self.channels} feature maps but the codes have {channels}")

        y_mix, m_y = self.draw_targets(y, y2)

        logits = self.net(y_mix if self.config.condition == "y_mix" else m_y).float()  # the estimators in float32, also under autocast
        p = torch.sigmoid(logits)
        if self.config.estimator == "straight_through":
            m = torch.bernoulli(p.detach()) + (p - p.detach())  # exactly 0/1 forward, dm/dp = 1 backward
        elif self.config.estimator == "relaxed":
            temperature = torch.tensor(self.config.temperature, device=h.device)
            m = torch.distributions.RelaxedBernoulli(temperature, logits=logits).rsample()
        else:
            m = p

        mask = m.to(h.dtype)
        weights = torch.stack([mask, 1 - mask], dim=1)  # (B, 2, C): broadcast over positions
        loss = None
        if self.config.eps > 0:
            loss = self.config.eps * ((m.sum(dim=1) - channels / 2) ** 2).mean()
        return MixResult(codes=blend([h, h2], weights), weights=weights, labels=y_mix,
                         extras={"p": p, "m": m}, loss=loss)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="mixer", name="class_mixer", implementation=ClassMixer, config=ClassMixerConfig,
                      requires=(Requires("attribute_labels", "its mask network reads the parents' attribute vectors"),),
                      provides=("mix", "mixed_labels"),
                      summary="supervised AMR: mixed attributes y_mix -> MLP -> Bernoulli mask over feature maps")]
