"""Offline tools that run on a workstation, never on the device.

Labelled data sets (:mod:`edgemon.training.datasets`), fitting, ONNX export
with its parity check, and evaluation. Modules here may import scikit-learn,
skl2onnx and matplotlib; nothing on the daemon's run path imports them.
"""
