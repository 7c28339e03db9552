"""Live capture of agent sessions: events, capture rules, the write-ahead log, the flusher.

Light at import (the settings module imports :mod:`.config`); the service and its
dependencies load only in ``posttrain serve``.
"""
