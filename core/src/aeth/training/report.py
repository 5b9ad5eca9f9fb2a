"""Training metrics to TensorBoard or MLflow, when installed and asked for (``aeth train --report``).

metrics.jsonl in the run directory is always written; a reporter only mirrors each step's record
(loss, learning rate, tokens/s, validation loss) to a tracker. TensorBoard event files go to
``<run>/tensorboard`` (``tensorboard --logdir $AETH_HOME/runs``); MLflow logs to the server or
store ``MLFLOW_TRACKING_URI`` names, else to the file store ``$AETH_HOME/mlruns`` (the ``home``
the reporter is given; without one, ``<run>/mlruns``)
(``mlflow ui --backend-store-uri $AETH_HOME/mlruns``), one MLflow run per aeth run (a resumed run
continues its own), in an experiment named ``aeth-<specialist>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: report targets ``aeth train --report`` accepts, with the package each needs
TARGETS = {"none": None, "tensorboard": "tensorboard", "mlflow": "mlflow"}


def check(target: str) -> None:
    """Refuse, before any work, a target whose package is not installed (naming the fix)."""
    import importlib.util

    from aeth.errors import AethError

    if target not in TARGETS:
        raise AethError(f"unknown report target {target!r}; choose one of {', '.join(TARGETS)}")
    package = TARGETS[target]
    if package and importlib.util.find_spec(package) is None:
        raise AethError(f"--report {target} needs the {package} package: pip install {package}")


class Reporter:
    """Mirrors metric records to the chosen tracker; does nothing for ``none``.

    ``home`` is ``$AETH_HOME``, where MLflow's file store goes when no tracking URI is set.
    """

    def __init__(self, target: str, run_dir: Path, specialist: str, home: Path | None = None):
        check(target)
        self.target, self._writer, self._mlflow = target, None, None
        if target == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        elif target == "mlflow":
            import os

            import mlflow

            if not os.environ.get("MLFLOW_TRACKING_URI"):  # MLflow's own default, ./mlruns, moves with the cwd
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # local files, in maintenance mode upstream
                store = Path(home) / "mlruns" if home is not None else Path(run_dir) / "mlruns"
                mlflow.set_tracking_uri(store.resolve().as_uri())
            mlflow.set_experiment(f"aeth-{specialist}")
            self._mlflow = mlflow
            # a resumed aeth run continues its MLflow run rather than starting a second one
            marker = Path(run_dir) / "mlflow_run_id"
            run_id = marker.read_text().strip() if marker.is_file() else None
            active = mlflow.start_run(run_id=run_id, run_name=Path(run_dir).name)
            marker.write_text(active.info.run_id)

    def log(self, record: dict[str, Any]) -> None:
        """One step's record (``step`` plus numeric metrics)."""
        step = record["step"]
        values = {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, int | float)}
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)
        elif self._mlflow is not None:
            self._mlflow.log_metrics(values, step=step)

    def close(self) -> None:
        """Flush and end (the TensorBoard file, the MLflow run)."""
        if self._writer is not None:
            self._writer.close()
        if self._mlflow is not None:
            self._mlflow.end_run()
