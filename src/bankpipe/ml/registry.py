"""The model registry: MLflow with a SQLite backend under the state dir (Settings.mlflow_tracking_uri).

Every training run is logged (params, metrics, the model, its test predictions). A new version
gets the alias `champion` only if it beats the current champion on the *same* test window;
scoring loads `models:/<name>@champion`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
EXPERIMENT = "bankpipe"
MODEL_NAMES = {"fraud": "bankpipe-fraud", "status": "bankpipe-status"}
# The metric that decides promotion, per target (higher is better for both).
PRIMARY_METRIC = {"fraud": "average_precision", "status": "macro_f1"}
# The registered pipelines hold only scikit-learn and numpy types; skops loads exactly these.
SKOPS_TRUSTED = [
    "numpy.dtype",
    "numpy.ndarray",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    # The fraud model is LR with a calibration map fitted on the validation window on top.
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # make_lr's spline basis on the amount inputs keeps scipy B-splines (and scipy's array namespace).
    "scipy.interpolate._bsplines.BSpline",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
]


@dataclass(frozen=True)
class ModelInfo:
    """A registered version: its name, version, training run and the tags scoring needs."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return float(self.tags.get("threshold", "0.5"))

    @property
    def psi_reference(self) -> dict[str, list[float]]:
        return json.loads(self.tags.get("psi_reference", "{}"))


def model_name(target: str) -> str:
    """The registered model name of a target (`fraud` → `bankpipe-fraud`)."""
    if target not in MODEL_NAMES:
        raise BankpipeError(f"unknown ML target {target!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MODEL_NAMES[target]


def artifact_root(settings: Settings) -> Path:
    """Where run artifacts live: `<state>/mlartifacts` (MLflow would default to ./mlruns in the cwd)."""
    path = settings.state / "mlartifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def client(settings: Settings) -> MlflowClient:
    """An MLflow client on the configured tracking and registry URI (SQLite under the state dir by default)."""
    # MLflow reads these at import; quieten its console chatter before that happens.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uri = settings.mlflow_tracking_uri
    _create_sqlite_store(uri, settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _create_sqlite_store(uri: str, settings: Settings) -> None:
    """Create a new SQLite registry whole or not at all: built under a temporary name, then linked into place.

    MLflow creates its ~40 tables one migration at a time; a process killed in between left a
    half-made file that every later run failed on ("table ... already exists").
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == f"{prefix}:memory:":
        return
    path = Path(uri[len(prefix) :])
    if path.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        store = SqlAlchemyStore(f"{prefix}{tmp}", artifact_root(settings).as_uri())
        store.engine.dispose()
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def experiment_id(settings: Settings, mlc: MlflowClient) -> str:
    """The `bankpipe` experiment, created with its artifacts under the state dir."""
    exp = mlc.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    return mlc.create_experiment(EXPERIMENT, artifact_location=artifact_root(settings).as_uri())


def should_promote(new_metric: float | None, champion_metric: float | None) -> bool:
    """The promotion rule: a new version wins when there is no champion or it scores strictly higher."""
    if new_metric is None:
        return False
    if champion_metric is None:
        return True
    return new_metric > champion_metric


def champion(settings: Settings, target: str, mlc: MlflowClient | None = None) -> ModelInfo | None:
    """The current champion of a target, or None when nothing was promoted yet."""
    from mlflow.exceptions import MlflowException

    mlc = mlc or client(settings)
    name = model_name(target)
    try:
        # search_model_versions does not return aliases; this lookup does.
        mv = mlc.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return ModelInfo(name=name, version=str(mv.version), run_id=mv.run_id, tags=dict(mv.tags))


def load_model(info: ModelInfo) -> Any:
    """Load a registered version's scikit-learn pipeline (skops, with the trusted types above)."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(f"models:/{info.name}/{info.version}")


def load_champion(settings: Settings, target: str) -> tuple[Any, ModelInfo] | None:
    """(pipeline, info) of the champion loaded by alias, or None when there is none."""
    mlc = client(settings)
    info = champion(settings, target, mlc)
    if info is None:
        return None
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(f"models:/{info.name}@{CHAMPION}")
    return model, info


def log_model(
    settings: Settings,
    target: str,
    model: Any,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
) -> ModelInfo:
    """Log one training run (params, metrics, artifacts, the model) and register a new version."""
    import mlflow
    import mlflow.sklearn

    mlc = client(settings)
    exp = experiment_id(settings, mlc)
    name = model_name(target)
    with mlflow.start_run(experiment_id=exp, run_name=f"{target}-{tags.get('trained_at', '')}") as run:
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED,
            # Named here, MLflow skips inferring them (a subprocess that re-imports the model: ~5 s).
            pip_requirements=_requirements(),
        )
    version = str(logged.registered_model_version)
    for key, value in tags.items():
        mlc.set_model_version_tag(name, version, key, value)
    log.info("logged run %s as %s version %s", run.info.run_id, name, version)
    return ModelInfo(name=name, version=version, run_id=run.info.run_id, tags=dict(tags))


def _requirements() -> list[str]:
    """What loading a registered pipeline needs, pinned to the versions that trained it."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "skops", "numpy", "pandas")]


def set_champion(settings: Settings, info: ModelInfo) -> None:
    """Point the `champion` alias at this version."""
    client(settings).set_registered_model_alias(info.name, CHAMPION, info.version)
    log.info("%s version %s is now %s", info.name, info.version, CHAMPION)


def tag_version(settings: Settings, info: ModelInfo, tags: dict[str, str]) -> None:
    """Add tags to a registered version (the promotion decision and its evidence)."""
    mlc = client(settings)
    for key, value in tags.items():
        mlc.set_model_version_tag(info.name, info.version, key, value)


def download_artifact(settings: Settings, run_id: str, path: str) -> Path:
    """A run's artifact as a local file."""
    import mlflow.artifacts

    client(settings)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=None))
