"""The engine-neutral contract that strategies, reward models and the server
share. Imports flow one way: ``core`` imports nothing of ponder's;
``strategies`` and ``prm`` each import only ``core``; the server wires them
together; ``bench`` sits on top (the contract in ``pyproject.toml``, checked
by the tests).

* :mod:`~ponder.core.generation`: prompts (rendered once, continued by token
  ids), sampling settings, samples with their stop reason and log-probabilities,
  the :class:`~ponder.core.generation.Generator` protocol, the request error.
* :mod:`~ponder.core.steps`: what a reasoning step is, for the search that
  generates one step at a time and for the verifier that scores them.
* :mod:`~ponder.core.scoring`: the one interface every step scorer keeps, from
  a learned process reward model to the model's own confidence.
* :mod:`~ponder.core.aggregate`: one solution score from its step scores.
* :mod:`~ponder.core.confidence`: how sure the model was, from its own token
  log-probabilities (DeepConf's trace confidences, self-certainty).
* :mod:`~ponder.core.metering`: usage and budgets over every engine and scorer
  call a strategy run makes, however many rounds it takes.
* :mod:`~ponder.core.redaction`: what an error or a log line may say of
  outside text: URLs without their credentials, foreign bodies by their shape.
"""
