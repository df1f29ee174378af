"""Score feature vectors with onnxruntime, running the exported ONNX graph.

The session runs on one thread, sequentially.  On the target device the
daemon shares a small CPU with the reader and publisher threads, and a batch
of a few windows with a few dozen features each is too small to gain from
parallelism.
"""

from __future__ import annotations

import os

import numpy as np

from edgemon.errors import ModelError

__all__ = ["INPUT_NAME", "OUTPUT_NAMES", "OnnxRuntimeScorer"]

#: Name of the graph input: float64 features of shape (n_windows, n_features).
INPUT_NAME = "features"
#: Graph outputs per algorithm: (cluster label, novelty source).  K-means gives
#: the distance to every centroid, GMM the log-likelihood ``score_samples``.
OUTPUT_NAMES = {"kmeans": ("label", "scores"), "gmm": ("label", "score_samples")}


class OnnxRuntimeScorer:
    """Run an edgemon ONNX model with onnxruntime on one thread.

    Parameters
    ----------
    model_bytes : bytes
        Contents of the ``.onnx`` file.
    algorithm : {"kmeans", "gmm"}
    n_features : int
        Number of input columns the model expects.

    Raises
    ------
    ModelError
        If onnxruntime is not installed, cannot load the graph, or the graph
        lacks the input or outputs an edgemon model has.
    """

    backend = "onnxruntime"

    def __init__(self, model_bytes: bytes, algorithm: str, n_features: int) -> None:
        # Linux wheels of onnxruntime (1.32 checked) create a telemetry database under
        # ~/.cache/Microsoft at import unless this is set first. A monitoring daemon
        # writes and sends nothing its user did not configure; users can still opt in.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime
        except ImportError as exc:
            raise ModelError(
                "backend 'onnxruntime' was requested but onnxruntime is not installed; "
                "install it with 'pip install onnxruntime' or use the numpy backend"
            ) from exc

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = onnxruntime.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated exception types
            raise ModelError(f"onnxruntime cannot load the model: {exc}") from exc

        inputs = {i.name: i for i in self._session.get_inputs()}
        if INPUT_NAME not in inputs or inputs[INPUT_NAME].type != "tensor(double)":
            found = ", ".join(f"{i.name}: {i.type}" for i in inputs.values())
            raise ModelError(
                f"model graph must have the input {INPUT_NAME!r} of type tensor(double), "
                f"found {found}; export the model with 'edgemon train'"
            )
        outputs = {o.name for o in self._session.get_outputs()}
        missing = [name for name in OUTPUT_NAMES[algorithm] if name not in outputs]
        if missing:
            raise ModelError(
                f"{algorithm} model graph lacks the outputs {missing}; found {sorted(outputs)}"
            )
        self.algorithm = algorithm
        self.n_features = n_features
        self._outputs = list(OUTPUT_NAMES[algorithm])

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the cluster and raw novelty score of each row of ``features``.

        Same contract as :meth:`edgemon.model.numpy_backend.NumpyScorer.score`.
        """
        labels, values = self._session.run(
            self._outputs, {INPUT_NAME: np.ascontiguousarray(features, dtype=np.float64)}
        )
        clusters = np.asarray(labels, dtype=np.int64).reshape(-1)
        if self.algorithm == "kmeans":
            novelty = values[np.arange(len(clusters)), clusters]
        else:
            novelty = -np.asarray(values, dtype=np.float64).reshape(-1)
        return clusters, np.asarray(novelty, dtype=np.float64)
