"""Prints scikit-learn's scores on tessera's example datasets.

The numbers are the references that `accuracy.rs` and `decision_tree.rs`
hard-code: test accuracy (R^2 for diabetes, a regression task), averaged over
random_state 0..n-1, for

* RandomForest{Classifier,Regressor}(n_estimators=100), defaults otherwise,
  averaged over more seeds on the smallest test sets (30 iris test rows:
  one row is 3 points), as FOREST_SEEDS says;
* DecisionTree{Classifier,Regressor}(), defaults otherwise, averaged over
  random_state 0..49 (a single tree varies much more by seed).

Run from the workspace root:

    python3 plugins/forest/tests/sklearn_reference.py
"""

import csv
import os

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "data")
DATASETS = ["iris", "wine", "breast_cancer", "digits", "diabetes"]
FOREST_SEEDS = {"iris": 100, "wine": 20, "breast_cancer": 20, "digits": 10, "diabetes": 20}
TREE_SEEDS = 50


def load(name, split):
    with open(os.path.join(DATA, f"{name}.{split}.csv")) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    return header[-1], body[:, :-1], body[:, -1]


def main():
    print(f"scikit-learn {sklearn.__version__}")
    models = {
        "random_forest": lambda reg, seed: (RandomForestRegressor if reg else RandomForestClassifier)(
            n_estimators=100, random_state=seed),
        "decision_tree": lambda reg, seed: (DecisionTreeRegressor if reg else DecisionTreeClassifier)(
            random_state=seed),
    }
    for learner, make in models.items():
        print(learner)
        for name in DATASETS:
            target, x_train, y_train = load(name, "train")
            _, x_test, y_test = load(name, "test")
            reg = target == "target"
            scores = []
            n = FOREST_SEEDS[name] if learner == "random_forest" else TREE_SEEDS
            for seed in range(n):
                model = make(reg, seed)
                model.fit(x_train, y_train)
                scores.append(model.score(x_test, y_test))
            metric = "r2" if reg else "accuracy"
            shown = " ".join(f"{s:.4f}" for s in scores[:5])
            print(f"  {name:14s} {metric:8s} {np.mean(scores):.4f}  ({n} seeds; 0..4: {shown})")


if __name__ == "__main__":
    main()
