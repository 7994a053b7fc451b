"""The contract suite that plugin authors reuse (mixframe.testing), run on the built-in components."""

from mixframe.testing import MixerContract, RegularizerContract


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


class TestAdversarial(RegularizerContract):
    name = "adversarial"


class TestConsistency(RegularizerContract):
    name = "consistency"


class TestAcai(RegularizerContract):
    name = "acai"
