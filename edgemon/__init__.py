"""edgemon: streaming condition monitoring for vibration sensors on edge devices.

The data path runs in one direction: a sensor source fills a ring buffer,
the feature stage turns each window into statistics, an ONNX model assigns a
cluster and a novelty score, the state logic names the condition, and the
MQTT publisher sends it on.  Submodules are imported on demand so that the
daemon loads only what its configuration needs.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
