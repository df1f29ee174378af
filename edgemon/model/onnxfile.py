"""Read the header of an ONNX file without the onnx or onnxruntime packages.

An ONNX file is one serialised ``onnx.ModelProto`` protocol buffer.  The
numpy scorer runs where onnxruntime has no wheels (32-bit ARM), and the
daemon must not import the onnx package.  This module therefore decodes the
few ``ModelProto`` fields edgemon needs with a small protobuf wire-format
reader.  Those are the IR version, producer, opset imports,
``metadata_props``, the names and element types of the graph's inputs and
outputs, and the raw bytes of the graph, from which the model id is
recomputed.

Field numbers follow ``onnx/onnx.proto3`` (ModelProto, GraphProto,
ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto,
StringStringEntryProto).  Unknown fields are skipped, as protobuf requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemon.errors import ModelError

__all__ = ["OnnxInfo", "TensorInfo", "parse_onnx", "read_onnx"]

# Wire types of the protobuf encoding.
_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

# ModelProto field numbers.
_MODEL_IR_VERSION = 1
_MODEL_PRODUCER_NAME = 2
_MODEL_PRODUCER_VERSION = 3
_MODEL_DOMAIN = 4
_MODEL_GRAPH = 7
_MODEL_OPSET_IMPORT = 8
_MODEL_METADATA_PROPS = 14

# GraphProto field numbers.
_GRAPH_NODE = 1
_GRAPH_NAME = 2
_GRAPH_INPUT = 11
_GRAPH_OUTPUT = 12

#: Names of ``TensorProto.DataType`` values that an edgemon model can use.
ELEMENT_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
}


@dataclass(frozen=True)
class TensorInfo:
    """Name, element type and shape of one graph input or output.

    ``shape`` contains an int for a fixed dimension, a str for a named
    (symbolic) dimension and None for an unnamed free dimension.
    """

    name: str
    element_type: str
    shape: tuple[int | str | None, ...] | None


@dataclass(frozen=True)
class OnnxInfo:
    """The parts of an ONNX ``ModelProto`` that edgemon reads before scoring."""

    ir_version: int
    producer_name: str
    producer_version: str
    domain: str
    #: Operator set version per domain; the default domain is ``""``.
    opset_import: dict[str, int]
    metadata_props: dict[str, str]
    graph_name: str
    n_nodes: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    #: The serialised GraphProto exactly as stored in the file.
    graph_bytes: bytes


class _WireError(Exception):
    """Malformed protobuf data; turned into a ModelError by the public functions."""


def read_onnx(path: str | Path) -> OnnxInfo:
    """Read the header of the ONNX file at ``path``.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.

    Returns
    -------
    OnnxInfo

    Raises
    ------
    ModelError
        If the path is not a readable file or the file is not an ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} not found or not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {str(path)!r}: {exc}") from exc
    return parse_onnx(data, source=str(path))


def parse_onnx(data: bytes, source: str = "<bytes>") -> OnnxInfo:
    """Decode the header of a serialised ONNX ``ModelProto``.

    Parameters
    ----------
    data : bytes
        Contents of an ``.onnx`` file.
    source : str
        Name of the file, used in error messages.

    Raises
    ------
    ModelError
        If ``data`` is not a well-formed protobuf message, or lacks the IR
        version or graph that every ONNX model has.
    """
    try:
        info = _parse_model(memoryview(data))
    except _WireError as exc:
        raise ModelError(f"{source!r} is not an ONNX model: {exc}") from exc
    if info.ir_version <= 0 or not info.graph_bytes:
        raise ModelError(
            f"{source!r} is not an ONNX model: it has no IR version or no graph; "
            "export the model with 'edgemon train'"
        )
    return info


# --------------------------------------------------------------------------
# Wire format


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError(f"varint longer than 10 bytes at byte {pos}")


def _fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    ``value`` is an int for varint and fixed-width fields and a memoryview for
    length-delimited fields.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 0x07
        if number == 0:
            raise _WireError(f"field number 0 at byte {pos}")
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire_type == _FIXED64:
            if pos + 8 > end:
                raise _WireError(f"truncated 64-bit field at byte {pos}")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire_type == _FIXED32:
            if pos + 4 > end:
                raise _WireError(f"truncated 32-bit field at byte {pos}")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif wire_type == _LENGTH_DELIMITED:
            length, pos = _read_varint(buf, pos)
            if pos + length > end:
                raise _WireError(
                    f"field {number} at byte {pos} claims {length} bytes but only "
                    f"{end - pos} remain"
                )
            value = buf[pos : pos + length]
            pos += length
        else:
            raise _WireError(f"unsupported wire type {wire_type} at byte {pos}")
        yield number, wire_type, value


def _expect(wire_type: int, expected: int, field: str) -> None:
    if wire_type != expected:
        raise _WireError(f"field {field} has wire type {wire_type}, expected {expected}")


def _text(value: memoryview, field: str) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _WireError(f"field {field} is not valid UTF-8") from exc


# --------------------------------------------------------------------------
# ONNX messages


def _parse_model(buf: memoryview) -> OnnxInfo:
    ir_version = 0
    producer_name = producer_version = domain = ""
    opset_import: dict[str, int] = {}
    metadata: dict[str, str] = {}
    graph = memoryview(b"")
    for number, wire_type, value in _fields(buf):
        if number == _MODEL_IR_VERSION:
            _expect(wire_type, _VARINT, "ModelProto.ir_version")
            ir_version = value
        elif number == _MODEL_PRODUCER_NAME:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.producer_name")
            producer_name = _text(value, "ModelProto.producer_name")
        elif number == _MODEL_PRODUCER_VERSION:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.producer_version")
            producer_version = _text(value, "ModelProto.producer_version")
        elif number == _MODEL_DOMAIN:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.domain")
            domain = _text(value, "ModelProto.domain")
        elif number == _MODEL_GRAPH:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.graph")
            graph = value
        elif number == _MODEL_OPSET_IMPORT:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.opset_import")
            opset_domain, version = _parse_opset(value)
            opset_import[opset_domain] = version
        elif number == _MODEL_METADATA_PROPS:
            _expect(wire_type, _LENGTH_DELIMITED, "ModelProto.metadata_props")
            key, text = _parse_string_entry(value)
            metadata[key] = text
    graph_name, n_nodes, inputs, outputs = _parse_graph(graph)
    return OnnxInfo(
        ir_version=ir_version,
        producer_name=producer_name,
        producer_version=producer_version,
        domain=domain,
        opset_import=opset_import,
        metadata_props=metadata,
        graph_name=graph_name,
        n_nodes=n_nodes,
        inputs=inputs,
        outputs=outputs,
        graph_bytes=bytes(graph),
    )


def _parse_opset(buf: memoryview) -> tuple[str, int]:
    domain, version = "", 0
    for number, wire_type, value in _fields(buf):
        if number == 1:
            _expect(wire_type, _LENGTH_DELIMITED, "OperatorSetIdProto.domain")
            domain = _text(value, "OperatorSetIdProto.domain")
        elif number == 2:
            _expect(wire_type, _VARINT, "OperatorSetIdProto.version")
            version = value
    return domain, version


def _parse_string_entry(buf: memoryview) -> tuple[str, str]:
    key, text = "", ""
    for number, wire_type, value in _fields(buf):
        if number == 1:
            _expect(wire_type, _LENGTH_DELIMITED, "StringStringEntryProto.key")
            key = _text(value, "StringStringEntryProto.key")
        elif number == 2:
            _expect(wire_type, _LENGTH_DELIMITED, "StringStringEntryProto.value")
            text = _text(value, "StringStringEntryProto.value")
    return key, text


def _parse_graph(
    buf: memoryview,
) -> tuple[str, int, tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    name = ""
    n_nodes = 0
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for number, wire_type, value in _fields(buf):
        if number == _GRAPH_NODE:
            n_nodes += 1
        elif number == _GRAPH_NAME:
            _expect(wire_type, _LENGTH_DELIMITED, "GraphProto.name")
            name = _text(value, "GraphProto.name")
        elif number == _GRAPH_INPUT:
            _expect(wire_type, _LENGTH_DELIMITED, "GraphProto.input")
            inputs.append(_parse_value_info(value))
        elif number == _GRAPH_OUTPUT:
            _expect(wire_type, _LENGTH_DELIMITED, "GraphProto.output")
            outputs.append(_parse_value_info(value))
    return name, n_nodes, tuple(inputs), tuple(outputs)


def _parse_value_info(buf: memoryview) -> TensorInfo:
    name = ""
    element_type = "unknown"
    shape: tuple[int | str | None, ...] | None = None
    for number, wire_type, value in _fields(buf):
        if number == 1:
            _expect(wire_type, _LENGTH_DELIMITED, "ValueInfoProto.name")
            name = _text(value, "ValueInfoProto.name")
        elif number == 2:
            _expect(wire_type, _LENGTH_DELIMITED, "ValueInfoProto.type")
            element_type, shape = _parse_type(value)
    return TensorInfo(name=name, element_type=element_type, shape=shape)


def _parse_type(buf: memoryview) -> tuple[str, tuple[int | str | None, ...] | None]:
    # TypeProto.tensor_type is field 1; sequences and maps do not occur in
    # edgemon models and are reported as "unknown".
    for number, wire_type, value in _fields(buf):
        if number == 1 and wire_type == _LENGTH_DELIMITED:
            return _parse_tensor_type(value)
    return "unknown", None


def _parse_tensor_type(buf: memoryview) -> tuple[str, tuple[int | str | None, ...] | None]:
    element_type = "unknown"
    shape: tuple[int | str | None, ...] | None = None
    for number, wire_type, value in _fields(buf):
        if number == 1:
            _expect(wire_type, _VARINT, "TypeProto.Tensor.elem_type")
            element_type = ELEMENT_TYPES.get(value, f"type {value}")
        elif number == 2:
            _expect(wire_type, _LENGTH_DELIMITED, "TypeProto.Tensor.shape")
            shape = tuple(
                _parse_dimension(dim)
                for dim_number, dim_wire, dim in _fields(value)
                if dim_number == 1 and dim_wire == _LENGTH_DELIMITED
            )
    return element_type, shape


def _parse_dimension(buf: memoryview) -> int | str | None:
    for number, wire_type, value in _fields(buf):
        if number == 1 and wire_type == _VARINT:
            return value
        if number == 2 and wire_type == _LENGTH_DELIMITED:
            return _text(value, "TensorShapeProto.Dimension.dim_param")
    return None
