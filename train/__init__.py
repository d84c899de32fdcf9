"""Desktop training of AU-guided expression classifiers, and their interpretability evaluation.

Builds on `edgefer` (classes, contract, landmarks, AU maps); `edgefer` never imports this package.
Heavy modules (torch, timm) are imported by the modules that need them, never by `train.cli` at
import time, so `edgefer --help` stays instant.
"""
