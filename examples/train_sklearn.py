"""Train a classifier on scikit-learn's breast-cancer data set and log the run to Steward.

After `make run` (which prints an API token on its first start):

    .venv/bin/steward login --url http://127.0.0.1:8000 --project demo   # paste the token
    .venv/bin/python examples/train_sklearn.py
    .venv/bin/python examples/train_sklearn.py --alpha 0.001 --epochs 60

Each run logs its params, a train/validation loss and accuracy curve per
epoch, the final test scores, a confusion matrix and classification report,
and the fitted model (skops format). Open the printed link to see it.
The project is created if it does not exist yet (you become its owner).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys

import numpy as np
import steward
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="project slug (default: the one from `steward login`, else 'demo')")
    parser.add_argument("--experiment", default="breast-cancer-sgd")
    parser.add_argument("--alpha", type=float, default=0.0001, help="L2 regularisation strength")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="constant SGD step size")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def ensure_project(client: steward.Client, slug: str) -> None:
    try:
        client.get_project(slug)
    except steward.NotFoundError:
        client.create_project(slug, name=slug.replace("-", " ").title())
        print(f"Created project '{slug}'.")


def main() -> int:
    args = parse_args()
    steward.seed_everything(args.seed)
    client = steward.Client()
    project = args.project or client.settings.project or "demo"
    try:
        ensure_project(client, project)
    except steward.AuthenticationError:
        print("Not logged in: run `steward login` with the token `make run` printed.", file=sys.stderr)
        return 1
    except steward.ServerUnavailableError as exc:
        print(f"Steward is not reachable at {client.url} ({exc}); is `make run` running?", file=sys.stderr)
        return 1

    data = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=args.test_size, random_state=args.seed, stratify=data.target
    )
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.2, random_state=args.seed, stratify=y_train
    )
    scaler = StandardScaler().fit(X_fit)
    model = SGDClassifier(loss="log_loss", alpha=args.alpha, learning_rate="constant",
                          eta0=args.learning_rate, random_state=args.seed)
    classes = np.unique(y_train)

    with steward.start_run(
        project=project, experiment=args.experiment,
        run_name=f"sgd alpha={args.alpha:g} lr={args.learning_rate:g}",
        tags={"dataset": "sklearn.datasets.load_breast_cancer", "model_family": "linear"},
    ) as run:
        run.log_params({
            "model": "SGDClassifier", "loss": "log_loss", "alpha": args.alpha,
            "learning_rate": args.learning_rate, "epochs": args.epochs, "test_size": args.test_size,
            "n_train": len(y_fit), "n_val": len(y_val), "n_test": len(y_test),
        })
        Xf, Xv = scaler.transform(X_fit), scaler.transform(X_val)
        for epoch in range(args.epochs):
            model.partial_fit(Xf, y_fit, classes=classes)
            run.log_metrics({
                "train_loss": log_loss(y_fit, model.predict_proba(Xf)),
                "val_loss": log_loss(y_val, model.predict_proba(Xv)),
                "train_accuracy": accuracy_score(y_fit, model.predict(Xf)),
                "val_accuracy": accuracy_score(y_val, model.predict(Xv)),
            }, step=epoch)

        pipeline = make_pipeline(scaler, model)
        predicted = pipeline.predict(X_test)
        scores = {
            "test_accuracy": accuracy_score(y_test, predicted),
            "test_f1": f1_score(y_test, predicted),
            "test_roc_auc": roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1]),
        }
        run.log_metrics(scores, step=args.epochs)

        matrix = io.StringIO()
        writer = csv.writer(matrix)
        writer.writerow(["actual \\ predicted", *data.target_names])
        for name, row in zip(data.target_names, confusion_matrix(y_test, predicted), strict=True):
            writer.writerow([name, *row])
        run.log_text(matrix.getvalue(), "evaluation/confusion_matrix.csv")
        run.log_text(classification_report(y_test, predicted, target_names=data.target_names),
                     "evaluation/classification_report.txt")
        try:
            run.log_model(pipeline)  # model/model.skops
        except steward.StewardError as exc:
            print(f"The model is not saved: {exc}")

    print(f"test accuracy {scores['test_accuracy']:.3f}, ROC AUC {scores['test_roc_auc']:.3f}")
    print(f"Run {run.id} logged: {client.url}/runs/{run.id}/")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
