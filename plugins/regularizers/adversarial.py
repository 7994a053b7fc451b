"""The adversarial regularizer of AMR and AE+GAN: a critic D judges reconstructions and/or mixes.

Critic: L_D = GAN_D(D(x), real) + sum over ``judge`` of GAN_D(D(fake), fake), fakes detached.
Autoencoder: ``weight`` * sum over ``judge`` of GAN_G(D(fake)), non-saturating (generator targets 1).
``judge: [reconstruction]`` with the ``none`` mixer is the AE+GAN baseline; both is AMR.

Supervised AMR (``conditional``):

* ``acgan`` (the authors' choice): an auxiliary head D_cls (sigmoid, one output per attribute) on
  the critic body's features, trained on real images with BCE(D_cls(x), y) (term ``d_cls``,
  unweighted). The autoencoder adds ``cls_weight`` * BCE(D_cls(x_mix), y_mix) (term ``g_cls``), with
  y_mix the mixer's mixed labels (``class_mixer``). With a mixer that mixes no labels, or when mixes
  are not judged, the class term is taken on reconstructions with their own labels y instead.
* ``projection`` (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, embed a linear
  map of the float attribute vector. Real pairs are (x, y); fakes (x_rec, y) and (x_mix, y_mix), so
  judging mixes needs a mixer that mixes labels.

Chance levels (``critic_chance``): the scores of the best constant critic (one that learns nothing
about its input), which outputs the base rate 1 / (1 + number of fake terms). Judging one kind of
fake that is ln 2 per BCE term and 0.25 per least-squares term; judging both it is ln 3 (d_real)
and ln 1.5 (each fake) for BCE, 4/9 and 1/9 for least squares -- the values a critic also settles
at when the generator wins. ``d_cls`` is a mean of BCE terms over attributes: ln 2 (exact for
balanced attributes; a critic that only learns the attributes' base rates scores their entropy).
"""

from __future__ import annotations

from typing import Literal

import attrs
from torch import Tensor, nn
from torch.nn import functional as F

from mixframe import BuildContext, Component, MixframeError, Regularizer, Step, hookimpl, in_range, param
from mixframe_plugins.regularizers._critic import LN2, TARGETS, apply_spectral_norm, build_body, chance, check_judge, d_loss, g_loss


@attrs.frozen(kw_only=True)
class AdversarialConfig:
    judge: tuple[str, ...] = param(TARGETS, help="what the critic judges as fake: reconstruction, mix, or both (AMR)",
                                validator=check_judge)
    loss: Literal["bce", "least_squares"] = param("bce", help="GAN loss: bce (non-saturating) or least_squares (LSGAN, targets 0/1)")
    weight: float = param(1.0, help="weight of the generator's GAN terms in the autoencoder loss", validator=in_range(0, None))
    spectral_norm: bool | None = param(None, help="spectral norm on every critic layer (null: on for images, off otherwise)")
    conditional: Literal["none", "acgan", "projection"] = param(
        "none", help="supervised AMR: acgan (auxiliary attribute head, the authors') or projection discriminator")
    cls_weight: float = param(1.0, help="weight of the generator's attribute term g_cls (conditional: acgan)",
                              validator=in_range(0, None))


class AdversarialRegularizer(Regularizer):
    """A GAN critic on reconstructions and/or decoded mixes, optionally conditioned on attributes."""

    gradient_targets = ("encoder", "decoder")  # reconstructions and mixes are decoded codes

    def __init__(self, config: AdversarialConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.num_attributes = len(context.data.attribute_names)
        if config.conditional != "none" and not self.num_attributes:
            raise MixframeError(f"adversarial conditional: {config.conditional} needs a dataset with binary attributes "
                                "(label_kind attributes), e.g. dsprites with labels: attributes; or set conditional: none")
        self.body = build_body(context, "adversarial")
        features = self.body.out_features
        self.head = nn.Linear(features, 1)
        self.cls_head = nn.Linear(features, self.num_attributes) if config.conditional == "acgan" else None
        self.embed = nn.Linear(self.num_attributes, features, bias=False) if config.conditional == "projection" else None
        use_sn = context.data.is_image if config.spectral_norm is None else config.spectral_norm
        if use_sn:
            apply_spectral_norm(self)

    def _score(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """Critic logits (B,) and body features (B, F); ``y`` is used by the projection head only."""
        phi = self.body(x)
        out = self.head(phi).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * phi).sum(dim=1)
        return out, phi

    def _labels(self, step: Step) -> Tensor | None:
        if self.config.conditional == "none":
            return None
        if step.y is None or step.y.dim() != 2 or step.y.shape[1] != self.num_attributes:
            shape = None if step.y is None else tuple(step.y.shape)
            raise MixframeError(f"adversarial conditional: {self.config.conditional} needs attribute vectors of shape "
                                f"(B, {self.num_attributes}) as labels, got {shape}")
        return step.y.to(step.x.dtype)

    def _mix(self, step: Step) -> tuple[Tensor, Tensor | None]:
        if step.x_mix is None or step.mix is None:
            raise MixframeError("adversarial with judge: [..., mix] needs decoded mixes; use a mixer other than none, "
                                "or set judge: [reconstruction]")
        y_mix = None if step.mix.labels is None else step.mix.labels.to(step.x_mix.dtype)
        if self.config.conditional == "projection" and y_mix is None:
            raise MixframeError("a projection discriminator judges (x_mix, y_mix) pairs: use a mixer that mixes labels "
                                "(class_mixer), or set judge: [reconstruction]")
        return step.x_mix, y_mix

    def critic_loss(self, step: Step) -> dict[str, Tensor]:
        kind = self.config.loss
        y = self._labels(step)
        out_real, phi_real = self._score(step.x, y)
        terms = {"d_real": d_loss(out_real, True, kind)}
        if "reconstruction" in self.config.judge:
            terms["d_fake_rec"] = d_loss(self._score(step.x_rec.detach(), y)[0], False, kind)
        if "mix" in self.config.judge:
            x_mix, y_mix = self._mix(step)
            terms["d_fake_mix"] = d_loss(self._score(x_mix.detach(), y_mix)[0], False, kind)
        if self.cls_head is not None:
            terms["d_cls"] = F.binary_cross_entropy_with_logits(self.cls_head(phi_real), y)
        return terms

    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]:
        kind, weight = self.config.loss, self.config.weight
        y = self._labels(step)
        terms: dict[str, Tensor] = {}
        cls_pair: tuple[Tensor, Tensor] | None = None
        if "reconstruction" in self.config.judge:
            out, phi = self._score(step.x_rec, y)
            terms["g_rec"] = weight * g_loss(out, kind)
            if y is not None:
                cls_pair = (phi, y)
        if "mix" in self.config.judge:
            x_mix, y_mix = self._mix(step)
            out, phi = self._score(x_mix, y_mix)
            terms["g_mix"] = weight * g_loss(out, kind)
            if y_mix is not None:
                cls_pair = (phi, y_mix)
        if self.cls_head is not None and cls_pair is not None:
            phi, target = cls_pair
            terms["g_cls"] = self.config.cls_weight * F.binary_cross_entropy_with_logits(self.cls_head(phi), target)
        return terms

    def critic_score(self, x: Tensor) -> Tensor:
        """The critic's logit per example, higher = judged real (:class:`mixframe.kernel.interfaces.ScoresData`); a projection
        critic scores its unconditional part psi(phi(x))."""
        return self.head(self.body(x)).squeeze(1)

    def critic_chance(self) -> dict[str, float]:
        real, fake = chance(self.config.loss, len(self.config.judge))
        out = {"d_real": real}
        if "reconstruction" in self.config.judge:
            out["d_fake_rec"] = fake
        if "mix" in self.config.judge:
            out["d_fake_mix"] = fake
        if self.cls_head is not None:
            out["d_cls"] = LN2
        return out

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (
        Requires("mixed_labels", "its projection critic (conditional: projection) judges each mix with its mixed labels y_mix",
                 when=lambda c: c.conditional == "projection" and "mix" in c.judge),
        Requires("mix", "it judges decoded mixes (judge: [..., mix])", when=lambda c: "mix" in c.judge),
        Requires("attribute_labels", "its conditional critic (conditional: acgan or projection) reads attribute vectors",
                 when=lambda c: c.conditional != "none"),
        Requires("critic", "it trains a critic"),
    )
    return [Component(kind="regularizer", name="adversarial", implementation=AdversarialRegularizer,
                      config=AdversarialConfig, requires=requires, provides=(),
                      summary="GAN critic on reconstructions and/or mixes (AE+GAN, AMR); optional AC-GAN or projection conditioning")]
