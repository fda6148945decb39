"""The paper recipes: scripts run from the repository root (`python recipes/gamma_mlp.py ...`).

A package so that the scripts and the tests import the shared plumbing the same way,
`recipes.common`; it is experiment code, not part of the keras-bioact wheel (pyproject.toml packages
`keras_bioact*` only). A script run by path puts the repository root on `sys.path` itself.
"""
