"""Plumbing shared by the recipes and `recipes/report.py` (not shipped with keras-bioact).

* `util`: the feed-forward recipes' flags, data, training loop, robustness sweeps, plots.
* `run_results`: one JSON file per finished run under `recipes/results` (`RunStore`, `load_run`).
* `tables`: number formatting and markdown tables (mean ± sample std, `keras_bioact.stats`).
* `report_claims`, `search_pays_report`: what `recipes/report.py` checks and prints.
"""
