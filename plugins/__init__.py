"""mixframe's built-in plugins, installed as ``mixframe_plugins``; each module registers through the public hooks."""
