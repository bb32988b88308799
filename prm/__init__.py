"""Process reward models: one score in [0, 1] per step of a solution.

Every model implements :class:`~ponder.prm.base.ProcessRewardModel` (async,
batched over candidates); :func:`~ponder.core.aggregate.aggregate` folds a
solution's step scores into one, and :mod:`ponder.prm.registry` builds the
models the server is started with from ``NAME=SPEC`` strings. Modules that
need vLLM import it themselves, so the step checker, the self-judge and the
remote client stay cheap to import.
"""
