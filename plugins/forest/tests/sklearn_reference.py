"""Prints scikit-learn's random forest scores on tessera's example datasets.

The numbers are the reference that `accuracy.rs` hard-codes: test accuracy
(R^2 for diabetes, a regression task), averaged over random_state 0..4, with
n_estimators=100 and every other parameter at its default.

Run from the workspace root:

    python3 plugins/forest/tests/sklearn_reference.py
"""

import csv
import os

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "data")
DATASETS = ["iris", "wine", "breast_cancer", "digits", "diabetes"]
SEEDS = range(5)


def load(name, split):
    with open(os.path.join(DATA, f"{name}.{split}.csv")) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    return header[-1], body[:, :-1], body[:, -1]


def main():
    print(f"scikit-learn {sklearn.__version__}")
    for name in DATASETS:
        target, x_train, y_train = load(name, "train")
        _, x_test, y_test = load(name, "test")
        scores = []
        for seed in SEEDS:
            if target == "target":
                model = RandomForestRegressor(n_estimators=100, random_state=seed)
            else:
                model = RandomForestClassifier(n_estimators=100, random_state=seed)
            model.fit(x_train, y_train)
            scores.append(model.score(x_test, y_test))
        metric = "r2" if target == "target" else "accuracy"
        print(f"{name:14s} {metric:8s} {np.mean(scores):.4f}  (seeds: "
              + " ".join(f"{s:.4f}" for s in scores) + ")")


if __name__ == "__main__":
    main()
