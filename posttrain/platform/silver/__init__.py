"""Record-level silver stages: parsing, quality filters and secret/PII redaction.

Each stage is a small picklable object called on one Arrow batch of parsed conversations
(a ``messages`` column of :data:`~posttrain.platform.schemas.MESSAGES_TYPE` beside any
provenance columns), so the in-process and Ray executors run the same code.
"""
