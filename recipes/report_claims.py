"""The claims `recipes/report.py` checks on the run files, and the parts of issue 15 not run yet.

Each entry of `CLAIMS` names the run files it reads (`recipe`, `setting`), the per-run `metric`
(a key of a run file's `metrics`), the direction the paper predicts (`better`: "lower" or
"higher" for the candidates), the `candidates` and `baselines` (variant names, or prefixes ending
in ":"), the seeds planned, and `why`: shown while a claim has no result on both sides, or too few
seeds. Pure data: no Keras import.
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
    "recipes/two_arg_xor.py writes run files (`--results`, early stopping with `--patience`), but no "
    "Fashion-MNIST run is started yet: one 2-arg run (pre-training, joint, frozen g) is far longer than a "
    "gamma run and the gamma grid had the CPU"
)
RNN_SETTING = "fashion_mnist-rows28"
RNN_WHY = (
    "recipes/adaptive_rnn.py writes run files (`--rows --seeds 0 1 2 --results recipes/results`), but no "
    "row-by-row Fashion-MNIST run is started yet: the gamma grid had the CPU"
)
NOT_RUN_GPU = (
    "The paper-scale ANRU (psMNIST, 784 steps, 400 units) on a GPU: no device was lent to the sessions so "
    "far; `bash scripts/paper_scale.sh anru` records it under recipes/results/paper_scale/ when one is"
)

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
        "paper": "Geadah et al. 2022",
        "claim": "the ANRU loses less accuracy than RNN+ReLU and gamma RNNs under a step drive of the "
        "pre-activations (drop at the largest strength; the LSTM has no pre-activation to drive)",
        "recipe": "adaptive_rnn",
        "setting": RNN_SETTING,
        "metric": "drive_accuracy_drop",
        "better": "lower",
        "candidates": ("anru",),
        "baselines": ("relu", "gamma_hom", "gamma_het", "lstm"),
        "planned_seeds": 3,
        "why": RNN_WHY,
    },
    {
        "paper": "Geadah et al. 2022",
        "claim": "the ANRU loses less accuracy than RNN+ReLU, gamma RNNs and the LSTM under sinusoidal input "
        "rescaling (drop at the largest amplitude)",
        "recipe": "adaptive_rnn",
        "setting": RNN_SETTING,
        "metric": "sin_accuracy_drop",
        "better": "lower",
        "candidates": ("anru",),
        "baselines": ("relu", "gamma_hom", "gamma_het", "lstm"),
        "planned_seeds": 3,
        "why": RNN_WHY,
    },
]
