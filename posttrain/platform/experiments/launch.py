"""Launch an experiment: plan it, write its manifest to ``lineage.experiments`` before any
compute, train, register the checkpoint, run its eval suites.

The CLI (``posttrain experiment launch``) and the Dagster job call the same two steps,
:func:`prepare` (manifest, no compute) and :func:`execute` (training and evals).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from posttrain.platform.errors import ConfigError
from posttrain.platform.experiments.config import ExperimentFile, load_experiment, parse_experiment
from posttrain.platform.experiments.evals import EvalOutcome, run_eval_suites
from posttrain.platform.experiments.manifest import (
    Checkpoint,
    Manifest,
    find_manifest,
    freeze_manifest,
    record_manifest,
    replay_plan,
)
from posttrain.platform.experiments.plan import Plan, plan_experiment
from posttrain.platform.experiments.train import Log, run_training
from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from posttrain.platform.evals.cache import EvalCache


def validate_file(warehouse: Warehouse | None, path: Path) -> tuple[ExperimentFile, Plan | None]:
    """Check an experiment file: on its own, then (with a warehouse) its tables and versions.

    Raises:
        ExperimentConfigError: every problem, with its line and key.
    """
    parsed = load_experiment(path)
    return parsed, plan_experiment(warehouse, parsed) if warehouse is not None else None


def validate_text(warehouse: Warehouse, text: str, path: str) -> Plan:
    """Like :func:`validate_file` for a config held in memory (a Dagster run config)."""
    from posttrain.platform.experiments.config import (
        ExperimentConfigError,
        data_problems,
        eval_problems,
        model_problems,
        trainer_problems,
    )

    parsed = parse_experiment(text, path)
    problems = model_problems(parsed) + data_problems(parsed) + eval_problems(parsed)
    problems += trainer_problems(parsed)
    if problems:
        raise ExperimentConfigError(path, problems)
    return plan_experiment(warehouse, parsed)


def prepare(
    warehouse: Warehouse,
    *,
    path: Path | None = None,
    text: str | None = None,
    manifest: str | None = None,
    config_path: str = "<run config>",
) -> Manifest:
    """Freeze and record the manifest of a launch (of a file, a config text, or a recorded
    manifest to replay). Nothing is trained yet.

    Raises:
        ExperimentConfigError: the file is invalid or names unknown data.
        ManifestNotFoundError: ``manifest`` names no recorded launch.
    """
    if manifest is not None:
        original = find_manifest(warehouse, manifest)
        plan = replay_plan(original)
        frozen = freeze_manifest(
            plan, config_path=original.config_path, replay_of=original.experiment_id
        )
    elif path is not None:
        _, plan_found = validate_file(warehouse, path)
        assert plan_found is not None
        frozen = freeze_manifest(plan_found, config_path=str(path))
    elif text is not None:
        plan = validate_text(warehouse, text, config_path)
        frozen = freeze_manifest(plan, config_path=config_path)
    else:
        raise ConfigError("launch needs an experiment file, a config or a manifest id")
    record_manifest(warehouse, frozen)
    return frozen


@dataclass(frozen=True)
class LaunchResult:
    """A finished launch: its manifest, checkpoint and eval outcomes."""

    manifest: Manifest
    checkpoint: Checkpoint
    evals: list[EvalOutcome] = field(default_factory=list)


def execute(
    warehouse: Warehouse,
    manifest: Manifest,
    output_root: Path,
    log: Log = print,
    eval_cache: EvalCache | None = None,
) -> LaunchResult:
    """Train a recorded manifest, register its checkpoint and run its eval suites (their
    outputs cached in ``eval_cache``, default ``$POSTTRAIN_HOME/eval-cache.sqlite``)."""
    trained = run_training(warehouse, manifest, output_root, log)
    checkpoint = trained.checkpoint
    outcomes = run_eval_suites(
        warehouse,
        manifest,
        checkpoint_id=checkpoint.checkpoint_id,
        checkpoint_path=checkpoint.path,
        cache=eval_cache,
    )
    for outcome in outcomes:
        log(f"eval {outcome.suite}: {outcome.detail} {outcome.metrics or ''}".rstrip())
    return LaunchResult(manifest, checkpoint, outcomes)


# -- which files changed ------------------------------------------------------------------


def changed_experiments(folder: Path, since: str) -> list[Path]:
    """Experiment files (``*.yaml``/``*.yml`` in ``folder``) added or changed since the git
    ref ``since``: committed, staged, modified or untracked; deleted files are left out.

    Raises:
        ConfigError: ``folder`` is not in a git checkout, or ``since`` names no commit.
    """
    folder = folder.resolve()

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"git failed in {folder}: {exc}") from None
        if done.returncode != 0:
            raise ConfigError(f"git {' '.join(args)} in {folder}: {done.stderr.strip()}")
        return done.stdout

    root = Path(git("rev-parse", "--show-toplevel").strip())
    git("rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
    names = git("diff", "--name-only", "--diff-filter=ACMR", "-z", since, "--", ".").split("\0")
    names += git("ls-files", "--others", "--exclude-standard", "--full-name", "-z", ".").split("\0")
    found = {(root / name).resolve() for name in names if name and name.endswith((".yaml", ".yml"))}
    return sorted(p for p in found if p.parent == folder and p.is_file())
