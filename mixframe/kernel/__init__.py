"""The kernel: the component contracts, the plugin registry, recipes, the model and the training engine.

Imports only ``mixframe.errors`` and ``mixframe.version`` from outside itself; everything else in mixframe
sits on top of it (``runs``: the run store and the API; ``tools``: sweeps, figures, reports; ``cli``).
"""
