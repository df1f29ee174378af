"""Describe a model file in plain text, for ``edgemon inspect model.onnx``.

The text starts with the model id and the ONNX header (IR version, opsets,
inputs and outputs).  It goes on with the signal the model expects, its
feature columns, the novelty threshold, and each cluster's state with its
training counts and purity.  It ends with how the number of clusters was
chosen, the training files and the library versions.  It reads the file with
edgemon's own protobuf reader, so it also works without the onnx package.
"""

from __future__ import annotations

from pathlib import Path

from edgemon.model.loading import read_metadata
from edgemon.model.metadata import ModelMetadata
from edgemon.model.onnxfile import OnnxInfo, TensorInfo, read_onnx

__all__ = ["inspect_text"]

_SELECTION_METHODS = {
    "user": "given by the user",
    "preset": "preset default, capped on small training sets",
    "bic": "smallest BIC",
    "silhouette": "largest silhouette",
    "elbow": "elbow of the K-means inertia",
}


def inspect_text(path: str | Path) -> str:
    """Return a readable description of the model file at ``path``.

    Raises
    ------
    ModelError
        If the file is not an edgemon model (see :func:`edgemon.model.load_model`).
    """
    path = Path(path)
    info = read_onnx(path)
    meta = read_metadata(info, source=str(path))
    sections = [
        _header(path, info, meta),
        _signal(meta),
        _features(meta),
        _novelty(meta),
        _states(meta),
        _selection(meta),
        _training(meta),
        _versions(meta),
    ]
    return "\n\n".join(sections) + "\n"


def _rows(pairs: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in pairs)


def _tensor(tensor: TensorInfo) -> str:
    if tensor.shape is None:
        return f"{tensor.name}: {tensor.element_type}"
    dims = ", ".join("?" if d is None else str(d) for d in tensor.shape)
    return f"{tensor.name}: {tensor.element_type} [{dims}]"


def _header(path: Path, info: OnnxInfo, meta: ModelMetadata) -> str:
    opsets = ", ".join(
        f"{domain or 'ai.onnx'} {version}" for domain, version in info.opset_import.items()
    )
    estimator = meta.algorithm
    if meta.algorithm == "gmm":
        estimator += f" ({meta.parameters.covariance_type} covariance)"
    pca = "none" if meta.pca is None else f"{meta.parameters.pca_components.shape[0]} components"
    if isinstance(meta.pca, float):
        pca += f" ({meta.pca:.0%} of the variance)"
    return f"Model {path.name}\n" + _rows(
        [
            ("model id", meta.model_id),
            ("estimator", f"{estimator}, {meta.n_clusters} clusters"),
            ("pipeline", f"StandardScaler -> PCA: {pca} -> {meta.algorithm}"),
            ("format", f"edgemon metadata version {meta.format_version}"),
            ("onnx", f"IR version {info.ir_version}; opsets {opsets}"),
            ("producer", f"{info.producer_name} {info.producer_version}".strip()),
            ("inputs", "; ".join(_tensor(t) for t in info.inputs)),
            ("outputs", "; ".join(_tensor(t) for t in info.outputs)),
        ]
    )


def _signal(meta: ModelMetadata) -> str:
    return "Signal\n" + _rows(
        [
            ("sample rate", f"{meta.sample_rate:g} Hz"),
            ("channels", ", ".join(meta.channels)),
            ("window", f"{meta.window} samples ({meta.window / meta.sample_rate * 1e3:.1f} ms)"),
            ("hop", f"{meta.hop} samples"),
        ]
    )


def _features(meta: ModelMetadata) -> str:
    spec = meta.features
    settings = [
        f"{key}={spec[key]}"
        for key in ("nfft", "resultant", "bands", "envelope")
        if spec.get(key) not in (None, False, [], ())
    ]
    lines = [f"Features ({meta.n_features} columns, in input order)"]
    if settings:
        lines.append("  settings: " + ", ".join(settings))
    lines.extend(f"  {index:>3}  {column}" for index, column in enumerate(meta.columns))
    return "\n".join(lines)


def _novelty(meta: ModelMetadata) -> str:
    novelty = meta.novelty
    definition = {
        "distance": "Euclidean distance to the nearest centroid, in the scaled (PCA) space",
        "neg_log_likelihood": "negative log-likelihood under the mixture",
    }.get(novelty.kind, novelty.kind)
    rule = (
        f"q + {novelty.margin:g} x (q - median), q = {novelty.quantile:g} quantile of the "
        "training scores"
    )
    return "Novelty (a window scoring above the threshold is 'unknown')\n" + _rows(
        [
            ("score", definition),
            ("threshold", f"{novelty.threshold:.6g}"),
            ("rule", rule),
            (
                "training",
                f"median {novelty.training_median:.6g}, q {novelty.training_quantile:.6g}",
            ),
        ]
    )


def _states(meta: ModelMetadata) -> str:
    header = ("cluster", "state", "windows", "purity", "training labels")
    rows = [
        (
            str(index),
            cluster.state,
            str(cluster.count),
            f"{cluster.purity:.3f}" + ("" if cluster.clear_majority else " (no majority)"),
            ", ".join(f"{label} {count}" for label, count in cluster.label_counts.items()),
        )
        for index, cluster in enumerate(meta.clusters)
    ]
    return "States\n" + _table(header, rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Return rows as left-aligned columns, indented by two spaces."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _selection(meta: ModelMetadata) -> str:
    selection = meta.selection
    pairs = [("method", _SELECTION_METHODS.get(selection.method, selection.method))]
    if selection.scores:
        scores = ", ".join(f"k={k}: {value:.4g}" for k, value in selection.scores.items())
        pairs.append(("scores", scores))
    if selection.note:
        pairs.append(("note", selection.note))
    return "Number of clusters\n" + _rows(pairs)


def _training(meta: ModelMetadata) -> str:
    training = meta.training
    lines = [
        "Training data\n"
        + _rows(
            [
                ("data set", training.dataset),
                ("windows", str(training.n_windows)),
                ("files", str(len(training.files))),
                ("created", f"{training.created} (seed {training.seed})"),
                *[
                    (key.replace("_", " "), str(value))
                    for key, value in sorted(training.options.items())
                ],
            ]
        )
    ]
    header = ("file", "label", "windows", "rate (Hz)", "sha256")
    rows = [
        (item.name, item.label, str(item.windows), f"{item.sample_rate:g}", item.sha256[:16])
        for item in training.files
    ]
    if rows:
        lines.append(_table(header, rows))
    return "\n".join(lines)


def _versions(meta: ModelMetadata) -> str:
    return "Versions\n" + _rows(sorted(meta.versions.items()))
