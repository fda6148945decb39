"""The claims `recipes/report.py` checks on the run files, and the parts of issue 15 not run yet.

Each entry of `CLAIMS` names the run files it reads (`recipe`, `setting`), the per-run `metric`
(a key of a run file's `metrics`), the direction the paper predicts (`better`: "lower" or
"higher" for the candidates), the `candidates` and `baselines` (variant names, or prefixes ending
in ":"; or, instead of `baselines`, a fixed `threshold` the candidates' mean is tested against),
the seeds planned, and `why`: shown while a claim has no result on both sides, or too few seeds.
Pure data: no Keras import.
"""

BRU = ("eru:", "oru:")
BASE = ("relu", "elu")
CNN_WHY = (
    "one 50-epoch CNN run takes 15-22 min on the 2-core CPU (measured, JAX), so the 25 runs need ~8 h; "
    "the grid runs seed-major (every variant's seed 0 first) across sessions, skipping finished runs "
    "(`python recipes/bru_vs_relu.py --results recipes/results ...`)"
)
# Parts of issue 15 that are not a paper's claim and have no result files yet (shown as not run).
GAMMA_SETTING = "fashion_mnist-mlp3x256"
GAMMA_WHY = (
    "the gamma grid (ReLU, homogeneous, heterogeneous, 15 static points; 5 seeds) runs seed-major across "
    "sessions, skipping finished runs (the command is in the README above)"
)
TWO_ARG_SETTING = "fashion_mnist-mlp120-120-120"
TWO_ARG_WHY = (
    "5 seeds, seed-major, with the command in the README below (`recipes/two_arg_xor.py --dataset "
    "fashion_mnist ... --results recipes/results`; finished runs are skipped)"
)
# Issue 30: the ViT with its feed-forward swapped (recipes/two_arg_vit.py) and the GLU MLP baselines.
VIT_SETTING = "fashion_mnist-vit4x64-t16"
VIT_WHY = (
    "5 seeds, seed-major, `KERAS_BACKEND=jax python recipes/two_arg_vit.py --results recipes/results "
    "--figures recipes/figures` (finished runs are skipped)"
)
VIT_BASELINES = ("relu", "gelu", "geglu", "swiglu")
# Sequence tasks of the adaptive RNN claims: row by row (T = 28) and 2x2-pooled pixels (T = 196).
RNN_SETTINGS = {
    "fashion_mnist-rows28": "row-by-row Fashion-MNIST, T = 28",
    "fashion_mnist-pixels196": "pixel-by-pixel Fashion-MNIST pooled 2x2, T = 196",
}
RNN_WHY = (
    "3 seeds of every model, seed-major, with the commands in the README below "
    "(`recipes/adaptive_rnn.py ... --seeds 0 1 2 --results recipes/results`; finished runs are skipped)"
)
RNN_DROPS = {
    "drive_accuracy_drop": "the ANRU loses less accuracy than RNN+ReLU and gamma RNNs under a step drive "
    "of the pre-activations (drop at the largest strength; the LSTM has no pre-activation to drive",
    "sin_accuracy_drop": "the ANRU loses less accuracy than RNN+ReLU, gamma RNNs and the LSTM under "
    "sinusoidal input rescaling (drop at the largest amplitude",
}


def _rnn_claim(setting, task, metric):
    """Geadah et al. 2022's robustness claim on one sequence task: the ANRU's accuracy drop is smallest."""
    return {
        "paper": "Geadah et al. 2022",
        "claim": f"{RNN_DROPS[metric]}; {task})",
        "recipe": "adaptive_rnn",
        "setting": setting,
        "metric": metric,
        "better": "lower",
        "candidates": ("anru",),
        "baselines": ("relu", "gamma_hom", "gamma_het", "lstm"),
        "planned_seeds": 3,
        "why": RNN_WHY,
    }


NOT_RUN_GPU = (
    "The paper-scale ANRU (psMNIST, 784 steps, 400 units) on a GPU: no device was lent to the sessions so "
    "far; `bash scripts/paper_scale.sh anru` records it under recipes/results/paper_scale/ when one is"
)

# Recipe-specific metrics shown as extra columns of a setting's table: (metric, header, digits, scale).
COLUMNS = {
    "two_arg_xor": (
        ("frozen_g_test_accuracy", "frozen g, fresh outer net: test accuracy %", 2, 100),
        ("xor_score", "xor_score of the learned g", 2, 1),
        ("epochs_trained", "epochs (early stopping)", 1, 1),
    ),
    "two_arg_vit": (
        ("xor_score", "xor_score of the learned g (mean over the g's)", 2, 1),
        ("xor_fraction", "share of g with is_xor", 2, 1),
    ),
    "adaptive_rnn": (
        ("drive_accuracy_drop", "accuracy drop at the largest step drive", 3, 1),
        ("sin_accuracy_drop", "accuracy drop at the largest sinusoidal amplitude", 3, 1),
    ),
}
# Per-seed values listed under a setting's table (every learned g's xor_score, not only the mean).
SEED_LISTS = {
    "two_arg_xor": (
        ("xor_score_pretrained", "xor_score of g after pre-training"),
        ("xor_score", "xor_score of g after joint training"),
    ),
    "two_arg_vit": (("xor_score", "mean xor_score of the learned g's"),),
}
# Settings whose table gives every other variant the Welch p (two-sided, test accuracy) against the
# best of these baselines by mean test accuracy.
BASELINES = {"two_arg_vit": VIT_BASELINES, "two_arg_xor": ("relu", "geglu", "swiglu")}
# Robustness sweeps drawn as accuracy against strength, from each run file's `record`: (key, x label).
SWEEPS = {
    "adaptive_rnn": (("step_drive", "step-drive strength xi"), ("sinusoidal", "sinusoidal amplitude A")),
}

# What each claim compares. `candidates` / `baselines`: variant names or prefixes ending in ":".
# `better`: which direction of `metric` the claim predicts for the candidates. `why`: shown while
# no result exists.
CLAIMS = [
    {
        "paper": "Bhumbra 2018",
        "claim": "BRU (ERU/ORU) nets train faster than ReLU/ELU nets (MLP 6x128, SGD)",
        "recipe": "bru_vs_relu",
        "setting": "fashion_mnist-mlp6",
        "metric": "mean_train_loss",
        "better": "lower",
        "candidates": BRU,
        "baselines": BASE,
        "planned_seeds": 5,
        "why": "the MLP grid is running (recipes/bru_vs_relu.py --results recipes/results)",
    },
    {
        "paper": "Bhumbra 2018",
        "claim": "BRU (ERU/ORU) gives the best-generalised model (MLP 6x128, SGD)",
        "recipe": "bru_vs_relu",
        "setting": "fashion_mnist-mlp6",
        "metric": "test_error",
        "better": "lower",
        "candidates": BRU,
        "baselines": BASE,
        "planned_seeds": 5,
        "why": "the MLP grid is running (recipes/bru_vs_relu.py --results recipes/results)",
    },
    {
        "paper": "Bhumbra 2018",
        "claim": "BRU (ERU/ORU) nets train faster than ReLU/ELU nets (small CNN)",
        "recipe": "bru_vs_relu",
        "setting": "fashion_mnist-cnn",
        "metric": "mean_train_loss",
        "better": "lower",
        "candidates": BRU,
        "baselines": BASE,
        "planned_seeds": 5,
        "why": CNN_WHY,
    },
    {
        "paper": "Bhumbra 2018",
        "claim": "BRU (ERU/ORU) gives the best-generalised model (small CNN)",
        "recipe": "bru_vs_relu",
        "setting": "fashion_mnist-cnn",
        "metric": "test_error",
        "better": "lower",
        "candidates": BRU,
        "baselines": BASE,
        "planned_seeds": 5,
        "why": CNN_WHY,
    },
    {
        "paper": "Geadah et al. 2020",
        "claim": "learning (n, s) per neuron (heterogeneous gamma) beats the best fixed gamma (MLP 3x256)",
        "recipe": "gamma_mlp",
        "setting": GAMMA_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("heterogeneous",),
        "baselines": ("static:",),
        "planned_seeds": 5,
        "why": GAMMA_WHY,
    },
    {
        "paper": "Geadah et al. 2020",
        "claim": "heterogeneous learned gamma beats ReLU (MLP 3x256)",
        "recipe": "gamma_mlp",
        "setting": GAMMA_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("heterogeneous",),
        "baselines": ("relu",),
        "planned_seeds": 5,
        "why": GAMMA_WHY,
    },
    {
        "paper": "Geadah et al. 2020",
        "claim": "adapting (n, s) speeds learning: learned gamma has a lower training-loss AUC than any "
        "fixed gamma or ReLU (MLP 3x256)",
        "recipe": "gamma_mlp",
        "setting": GAMMA_SETTING,
        "metric": "mean_train_loss",
        "better": "lower",
        "candidates": ("homogeneous", "heterogeneous"),
        "baselines": ("relu", "static:"),
        "planned_seeds": 5,
        "why": GAMMA_WHY,
    },
    {
        "paper": "Geadah et al. 2022",
        "claim": "heterogeneous learned gamma is more robust to Gaussian input noise (accuracy at the "
        "largest sigma) than ReLU and homogeneous gamma (MLP 3x256)",
        "recipe": "gamma_mlp",
        "setting": GAMMA_SETTING,
        "metric": "noise_max_sigma_accuracy",
        "better": "higher",
        "candidates": ("heterogeneous",),
        "baselines": ("relu", "homogeneous"),
        "planned_seeds": 5,
        "why": GAMMA_WHY,
    },
    {
        "paper": "Yoon et al. 2021",
        "claim": "a 2-arg MLP 784-[120]x3 beats the parameter-matched ReLU [112]x3",
        "recipe": "two_arg_xor",
        "setting": TWO_ARG_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("2-arg",),
        "baselines": ("relu",),
        "planned_seeds": 3,
        "why": TWO_ARG_WHY,
    },
    {
        "paper": "Yoon et al. 2021",
        "claim": "a 2-arg MLP 784-[120]x3 beats its 1-arg control (same widths, one-argument inner g)",
        "recipe": "two_arg_xor",
        "setting": TWO_ARG_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("2-arg",),
        "baselines": ("1-arg",),
        "planned_seeds": 3,
        "why": TWO_ARG_WHY,
    },
    {
        "paper": "Yoon et al. 2021",
        "claim": "joint training turns the shared g of the 2-arg MLP into a soft XOR (xor_score of the "
        "learned g above the is_xor threshold 0.25 of `keras_bioact.analysis.xor_score`)",
        "recipe": "two_arg_xor",
        "setting": TWO_ARG_SETTING,
        "metric": "xor_score",
        "better": "higher",
        "candidates": ("2-arg",),
        "threshold": 0.25,
        "planned_seeds": 3,
        "why": TWO_ARG_WHY,
    },
    {
        "paper": "issue 30 (GLU baselines, Shazeer 2020)",
        "claim": "a 2-arg MLP 784-[120]x3 beats the parameter-matched GEGLU and SwiGLU MLPs",
        "recipe": "two_arg_xor",
        "setting": TWO_ARG_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("2-arg",),
        "baselines": ("geglu", "swiglu"),
        "planned_seeds": 5,
        "why": TWO_ARG_WHY,
    },
    {
        "paper": "issue 30 (Shazeer 2020; Yang & Wang 2025)",
        "claim": "a two-argument feed-forward (shared or grouped g) beats the best parameter-matched "
        "ReLU/GELU/GEGLU/SwiGLU feed-forward in a small ViT",
        "recipe": "two_arg_vit",
        "setting": VIT_SETTING,
        "metric": "test_error",
        "better": "lower",
        "candidates": ("2-arg", "2-arg-grouped"),
        "baselines": VIT_BASELINES,
        "planned_seeds": 5,
        "why": VIT_WHY,
    },
    {
        "paper": "issue 30 (Shazeer 2020; Yang & Wang 2025)",
        "claim": "a two-argument feed-forward trains faster (lower training-loss area) than the best "
        "parameter-matched ReLU/GELU/GEGLU/SwiGLU feed-forward in a small ViT",
        "recipe": "two_arg_vit",
        "setting": VIT_SETTING,
        "metric": "mean_train_loss",
        "better": "lower",
        "candidates": ("2-arg", "2-arg-grouped"),
        "baselines": VIT_BASELINES,
        "planned_seeds": 5,
        "why": VIT_WHY,
    },
    *(_rnn_claim(setting, task, metric) for setting, task in RNN_SETTINGS.items() for metric in RNN_DROPS),
]
