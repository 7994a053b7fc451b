"""Do decoded mixes show the attributes asked for? ``mixframe attribute-accuracy`` as a metric, for studies.

The same protocol as the command (docs/supervised.md; ``plugins/commands/supervised.py``): a small CNN
judge trained on the real training split (seeded by ``seed``), random pairs of the scored split, targets
``y_mix`` drawn as the run's mixer draws them (uniformly for a mixer that does not choose them), and the
judge's reading of each decoded mix against ``y_mix``. ``first_parent_*`` scores the real first parent
against the same targets: what copying one parent would score (a reference row of a study when it is the
same for every run).
"""

from __future__ import annotations

import attrs

from mixframe import BuildContext, Component, Metric, Run, hookimpl, param, positive


@attrs.frozen(kw_only=True)
class AttributesConfig:
    pairs: int = param(2000, validator=positive, help="random pairs of examples mixed and judged")
    classifier_epochs: int = param(4, validator=positive, help="epochs of the attribute judge, trained on real training examples")
    seed: int = param(0, help="evaluation seed, the same for every run: the judge's initialisation, the pairs and the targets")


class AttributesMetric(Metric):
    """Attribute accuracy of decoded supervised mixes (needs binary attributes), with copy-a-parent as reference."""

    headline = "mix_attribute_accuracy"
    meanings = {
        "mix_attribute_accuracy": "share of attributes the judge reads as y_mix in the decoded mixes; higher is better",
        "mix_vector_accuracy": "share of decoded mixes whose every attribute reads as y_mix; higher is better",
        "first_parent_attribute_accuracy": "the copy-one-parent reference: the same share for the real first parent",
        "first_parent_vector_accuracy": "the copy-one-parent reference for whole vectors",
        "reconstruction_attribute_accuracy": "attributes read correctly in reconstructions (the decoder's ceiling)",
        "classifier_test_attribute_accuracy": "the judge's accuracy on real test examples; if low, the other numbers say little",
    }
    directions = {"mix_attribute_accuracy": "max", "mix_vector_accuracy": "max"}
    references = {"mix_attribute_accuracy": "first_parent_attribute_accuracy", "mix_vector_accuracy": "first_parent_vector_accuracy"}

    def __init__(self, config: AttributesConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        from mixframe_plugins.commands.supervised import measure_mixes, train_attribute_classifier

        predict, stats = train_attribute_classifier(run.data, seed=self.config.seed, epochs=self.config.classifier_epochs)
        return {**stats, **measure_mixes(run, predict, pairs=self.config.pairs, seed=self.config.seed, split=split)}


@hookimpl
def mixframe_metrics() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("attribute_labels", "its judge reads binary attributes from decoded mixes"),)
    return [Component(kind="metric", name="attributes", implementation=AttributesMetric, config=AttributesConfig,
                      requires=requires, provides=(),
                      summary="attribute accuracy of decoded supervised mixes (mixframe attribute-accuracy as a metric), copy-a-parent reference")]
