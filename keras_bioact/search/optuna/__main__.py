"""`python -P -m keras_bioact.search.optuna --worker-index I`: one worker process of a search,
its job on stdin (see `keras_bioact.search.optuna.workers`)."""

import sys

from keras_bioact.search.optuna.workers import worker_main

sys.exit(worker_main())
