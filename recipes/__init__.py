"""The shipped recipes, installed as the package ``mixframe_recipes`` so that a pip-installed mixframe
has them too: ``mixframe recipes`` lists them, ``mixframe train NAME`` trains one, ``extends:
shipped:NAME`` builds on one from any folder and ``mixframe recipe copy NAME DEST`` starts your own
(see :mod:`mixframe.kernel.recipe`). This folder holds only YAML files besides this one."""
