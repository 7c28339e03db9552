"""Experiments: config files under ``experiments/``, frozen manifests, TRL training on the
pinned blend, registered checkpoints and the lineage from a checkpoint down to bronze.

Modules: :mod:`.config` (the file schema and its line-numbered errors), :mod:`.plan`
(resolution against the warehouse), :mod:`.manifest` (``lineage.experiments`` and
``lineage.checkpoints``), :mod:`.train` (TRL), :mod:`.launch` (the two steps of a launch,
and the files changed since a git ref), :mod:`.trace` (``posttrain lineage checkpoint:ID``).
"""
