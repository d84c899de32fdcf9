"""The PyQt6 monitoring application (`edgefer ui`).

A window around the same `edgefer.pipeline.runner.Pipeline` and renderer that `edgefer run` uses:
live annotated video, one panel per tracked face with a short probability history, recording,
snapshots and the pipeline's live settings. Only the modules that build widgets import PyQt6;
`ui.cli` stays light so `edgefer --help` never loads Qt.
"""
