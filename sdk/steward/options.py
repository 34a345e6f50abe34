"""The options of a new run, defined once.

:func:`steward.start_run`, :meth:`steward.Client.start_run` and
:class:`steward.Run` all take :class:`RunOptions`.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RunOptions:
    """What a run is started with. Every ``start_run`` takes these as its arguments.

    The first four may be given by position; MLflow's keyword names are
    accepted beside Steward's (``run_name`` for ``name``, ``description`` for
    ``notes``), and giving both with different values is a ``TypeError``.

    Attributes:
        project: Project slug. Default: the configured project
            (``steward.configure(project=...)``, ``STEWARD_PROJECT``,
            ``steward login --project``). A project that does not exist is
            created, with you as its owner, when the server lets you create
            projects; otherwise the error names it.
        experiment: Experiment name, created if missing. Default: the one
            :func:`steward.set_experiment` chose (or ``STEWARD_EXPERIMENT``),
            else ``"Default"``.
        name: The run's display name (MLflow: ``run_name``).
        tags: Tags to start with, ``{key: value}``; values are stored as
            :func:`steward.keys.param_text` makes them.
        run_name: MLflow's name for ``name``.
        description: Free text shown on the run's page (MLflow's name for ``notes``).
        notes: Steward's name for ``description``.
        nested: Record the innermost active run (see :func:`steward.active_run`)
            as this run's parent; the run goes in the parent's project and
            experiment unless they are given. Without an active run the run
            has no parent.
        parent_run_id: The parent run's id, explicitly (wins over ``nested``).
        run_id: Resume this run: it must exist and still be ``RUNNING`` (an
            ended run cannot start again); its project and experiment are the
            run's own. A UUID that names no run yet creates the run with that
            id (scripts that choose their ids keep working). While the server
            cannot be reached the run cannot be checked: give its project and
            experiment, and the spooled creation finds it when it is sent.
        log_system_metrics: ``True`` samples CPU and memory as ``system/*``
            metrics every ``system_metrics_interval`` seconds (10 unless
            configured), ``False`` never, ``None`` as configured. Needs psutil.
        system_metrics: Sampling interval in seconds; turns sampling on
            (Steward's older spelling of ``log_system_metrics``).
        seed: Stored as the run's seed. Default: the seed given to
            :func:`steward.seed_everything`, if any.
        capture: Record where the run came from: git commit, branch, dirty flag
            and diff, entry point, host, Python version and installed packages.
        capture_git: With ``capture``, include the git state (off saves the
            ``git`` calls).
    """

    project: str | None = None
    experiment: str | None = None
    name: str | None = None
    tags: Mapping[str, Any] | None = None
    _: KW_ONLY
    run_name: str | None = None
    description: str | None = None
    notes: str | None = None
    nested: bool = False
    parent_run_id: str | None = None
    run_id: str | None = None
    log_system_metrics: bool | None = None
    system_metrics: float | None = None
    seed: int | None = None
    capture: bool = True
    capture_git: bool = True

    def __post_init__(self) -> None:
        for mlflow_name, own_name in (("run_name", "name"), ("description", "notes")):
            theirs, ours = getattr(self, mlflow_name), getattr(self, own_name)
            if theirs is not None and ours is not None and theirs != ours:
                raise TypeError(f"start_run() got both {mlflow_name}={theirs!r} and {own_name}={ours!r}; "
                                f"give one of them.")
            value = theirs if theirs is not None else ours
            object.__setattr__(self, mlflow_name, value)
            object.__setattr__(self, own_name, value)
        for name in ("run_id", "parent_run_id"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, str(uuid.UUID(str(value))))
                except ValueError:
                    raise ValueError(
                        f"start_run(): {name} must be a run id (a UUID), got {value!r}."
                    ) from None
        if self.system_metrics is not None and self.log_system_metrics is False:
            raise TypeError("start_run() got system_metrics together with log_system_metrics=False.")
        if self.system_metrics is not None and self.system_metrics <= 0:
            raise ValueError("start_run(): system_metrics must be a number of seconds above 0.")

    @classmethod
    def from_call(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RunOptions:
        """The options of a ``start_run(*args, **kwargs)`` call; unknown names are a ``TypeError``."""
        if len(args) > 4:
            raise TypeError(f"start_run() takes at most 4 positional arguments ({len(args)} given).")
        unknown = set(kwargs) - set(_FIELD_NAMES)
        if unknown:
            raise TypeError(f"start_run() got unexpected keyword argument(s): {', '.join(sorted(unknown))}.")
        return cls(*args, **kwargs)


_FIELD_NAMES = tuple(f.name for f in fields(RunOptions) if f.name != "_")


def with_run_options(func: F) -> F:
    """Give a ``start_run(*args, **options)`` wrapper the full signature of :class:`RunOptions`.

    ``help()``, ``inspect.signature`` and IDEs then show every option, while
    the options themselves stay defined once, on :class:`RunOptions`.
    """
    own = [p for p in inspect.signature(func).parameters.values()
           if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    leading = [p for p in own if p.kind is not p.KEYWORD_ONLY]
    trailing = [p for p in own if p.kind is p.KEYWORD_ONLY]
    options = []
    for param in inspect.signature(RunOptions).parameters.values():
        positional = param.kind is param.POSITIONAL_OR_KEYWORD
        kind = param.POSITIONAL_OR_KEYWORD if positional else param.KEYWORD_ONLY
        options.append(param.replace(kind=kind))
    func.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*leading, *options, *trailing], return_annotation=inspect.signature(func).return_annotation,
    )
    return func
