"""Request and response models, one module per API (as vLLM keeps them),
with what they share in :mod:`.common`."""
