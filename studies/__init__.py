"""The shipped studies, installed as the package ``mixframe_studies``: ``mixframe study list`` lists them,
``mixframe study NAME --out DIR`` runs one (see :mod:`mixframe.tools.study` and docs/studies.md). Each is
the protocol of one table of docs/results.md or docs/supervised.md. This folder holds only YAML files besides this one."""
