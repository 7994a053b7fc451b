"""Built-in mixers."""
