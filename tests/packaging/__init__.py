"""Packaging: the built wheel and sdist, installed as users install them."""
