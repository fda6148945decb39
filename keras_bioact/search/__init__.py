"""Activation search: Optuna (hyper-parameter search) and EvoTorch (neuroevolution) engines."""
