"""The command line: parsing, dispatch to command plugins (``main``) and the shared argument helpers (``arguments``)."""
