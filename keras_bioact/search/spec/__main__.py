"""`python -m keras_bioact.search.spec > docs/specs.md`: the reference of every spec key."""

from keras_bioact.search.spec.schema import markdown

print(markdown(), end="")
