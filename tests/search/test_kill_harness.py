"""SIGKILL at random moments (tests/helpers/kill_harness.py): no finished trial or generation is lost."""

import json
import random

import pytest
from helpers import kill_harness

pytestmark = pytest.mark.single_backend


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_killed_search_workers_lose_no_complete_trial(tmp_path, kind):
    url = {"sqlite": f"sqlite:///{tmp_path}/k.db", "journal": f"journal:///{tmp_path}/k.log"}[kind]
    row = kill_harness.kill_search(url, kills=2, n_trials=12, workers=2, rng=random.Random(3))
    assert row["kills"] >= 1 and row["complete_trials_seen_before_kills"] >= 1, row
    assert row["ok"], json.dumps(row)


@pytest.mark.timeout(900)
def test_killed_evolution_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL mid-run, twice; the killed runs left finished generations and no final result; the
    resumed run ends with every generation's row and the result of an uninterrupted run."""
    row = kill_harness.kill_evolution(str(tmp_path), kills=2, generations=10, rng=random.Random(4))
    assert row["kills"] == 2 and 2 <= row["generations_before_resume"] < 10, row
    assert not row["finished_before_resume"] and row["generations_lost"] == 0, row
    assert row["history_rows"] == 10 and row["equal_to_uninterrupted"], row
    assert row["ok"], json.dumps(row)
