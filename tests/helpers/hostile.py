"""Hostile inputs, built from public scanner-evasion reports: generators, not blobs.

Each builder writes one file (or folder) into a given place; those that carry a
payload take the canary path it would create when loaded the ordinary way. Used
by the tests (each class through the real CLI) and by bench/bench_hostile.py (a
folder mixing all of them, scanned for memory and exit codes).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from helpers import malicious
from safetensors.torch import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "reference_models" / "examples"


def _payload_body(canary: Path) -> bytes:
    """A protocol-0 call of os.system, without PROTO or STOP."""
    return f"cos\nsystem\n(S'{malicious._command(canary)}'\ntR".encode()


def _example_onnx_bytes() -> bytes:
    """A real exported face embedder (the reference CNN with the clean example's weights)."""
    import warnings

    from fraudit.models.reference import ReferenceEmbedder

    model = ReferenceEmbedder()
    weights = load_file(str(EXAMPLES / "clean.safetensors"))
    model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("head.")})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(1, 3, 64, 64),), buffer, dynamo=False,
                          input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}})
    return buffer.getvalue()


def onnx_pickle_polyglot(path: Path, canary: Path) -> Path:
    """A valid ONNX model that is also a pickle running os.system.

    Byte 0 is 'J': to protobuf the key of an unknown length-delimited field (9), to
    pickle BININT. The field's length varint and two more bytes are BININT's
    argument; the rest of the field is ``POP`` and the payload, ending at STOP. After
    the field comes a real exported model, which onnx reads and pickle never reaches.
    """
    core = b"0" + _payload_body(canary) + b"."
    if len(core) + 3 < 128:  # one varint byte: three more bytes complete BININT's argument
        rest = b"\x00" * 3 + core
        varint = bytes([len(rest)])
    else:
        rest = b"\x00" * 2 + core
        assert len(rest) < 16384
        varint = bytes([0x80 | (len(rest) & 0x7F), len(rest) >> 7])
    path.write_bytes(b"J" + varint + rest + _example_onnx_bytes())
    return path


def safetensors_zip_polyglot(path: Path, canary: Path) -> Path:
    """A valid safetensors file (the clean example's weights) that is also a PyTorch zip
    whose data.pkl runs os.system: the u64 header length is the bytes 'PK\\x03\\x04'
    plus four zeros (67,324,752), the zip's central directory points into a uint8
    tensor at the end of the data, and the file ends with the zip's end record."""
    header_len = struct.unpack("<Q", b"PK\x03\x04\x00\x00\x00\x00")[0]
    tensors = {k: v.contiguous() for k, v in load_file(str(EXAMPLES / "clean.safetensors")).items()}
    raw = _safetensors_body(tensors)
    data, entries = raw["data"], raw["entries"]
    zip_start = 8 + header_len + len(data)
    archive = _zip_bytes({"archive/data.pkl": malicious.reduce_os_system(canary),
                          "archive/version": b"3\n", "archive/byteorder": b"little"}, offset=zip_start)
    entries["zip"] = {"dtype": "U8", "shape": [len(archive)], "data_offsets": [len(data), len(data) + len(archive)]}
    text = json.dumps({"__metadata__": {"format": "pt"}, **entries}, separators=(",", ":")).encode()
    header = text + b" " * (header_len - len(text))
    with path.open("wb") as f:
        f.write(struct.pack("<Q", header_len))
        f.write(header)
        f.write(data)
        f.write(archive)
    return path


def _safetensors_body(tensors: dict[str, torch.Tensor]) -> dict:
    dtypes = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16"}
    data = bytearray()
    entries = {}
    for name in sorted(tensors):
        tensor = tensors[name]
        blob = tensor.numpy().tobytes()
        entries[name] = {"dtype": dtypes[tensor.dtype], "shape": list(tensor.shape),
                         "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return {"data": bytes(data), "entries": entries}


def _zip_bytes(members: dict[str, bytes], *, offset: int) -> bytes:
    """A stored zip whose recorded offsets are absolute for a file where it starts at ``offset``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    raw = bytearray(buffer.getvalue())
    eocd = raw.rfind(b"PK\x05\x06")
    (cd_size, cd_offset) = struct.unpack_from("<II", raw, eocd + 12)
    struct.pack_into("<I", raw, eocd + 16, cd_offset + offset)
    position = cd_offset
    while position < cd_offset + cd_size:
        assert raw[position:position + 4] == b"PK\x01\x02"
        (local,) = struct.unpack_from("<I", raw, position + 42)
        struct.pack_into("<I", raw, position + 42, local + offset)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", raw, position + 28)
        position += 46 + name_len + extra_len + comment_len
    return bytes(raw)


def decoy_integer_pickle(path: Path, canary: Path) -> Path:
    """``I0x10``: an integer to the unpickler, an error to pickletools — then the payload."""
    path.write_bytes(b"\x80\x02I0x10\n0" + _payload_body(canary) + b".")
    return path


def protocol0_under_text_name(folder: Path, canary: Path) -> Path:
    path = folder / "notes.txt"
    path.write_bytes(malicious.protocol0_text(canary))
    return path


def pickle_in_hidden_folder(folder: Path, canary: Path) -> Path:
    hidden = folder / ".cache" / "blob"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    hidden.write_bytes(malicious.stack_global_via_memo(canary))
    return hidden


def numpy_object_array(folder: Path, canary: Path) -> Path:
    """A .npy whose object array unpickles os.system (np.load(allow_pickle=True))."""
    path = folder / "embeddings.npy"
    array = np.empty(1, dtype=object)
    array[0] = malicious._Reduce(os.system, malicious._command(canary))
    np.save(path, array, allow_pickle=True)
    return path


def joblib_file(folder: Path, canary: Path) -> Path:
    import joblib

    path = folder / "scaler.joblib"
    joblib.dump({"scale": np.ones(3), "hook": malicious._Reduce(os.system, malicious._command(canary))}, path)
    return path


def custom_op_in_subgraph(path: Path) -> Path:
    """A custom (native-code) operator inside an If branch: invisible at the top level."""
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    branch = helper.make_graph([helper.make_node("FastGemm", ["x", "w"], ["y"], domain="vendor.ops")], "then",
                               [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["y2"])], "else",
                              [], [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4])])
    node = helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
                              initializer=[weight])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("vendor.ops", 1)]),
         str(path))
    return path


def custom_op_in_local_function(path: Path) -> Path:
    """A model-local function (plain ONNX to call) whose body calls a custom operator of its own domain."""
    from onnx import TensorProto, helper, numpy_helper, save

    function = helper.make_function("vendor.ops", "Wrapped", ["x", "w"], ["y"],
                                    [helper.make_node("FastGemm", ["x", "w"], ["y"], domain="vendor.ops")],
                                    [helper.make_opsetid("", 17), helper.make_opsetid("vendor.ops", 1)])
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Wrapped", ["x", "w"], ["y"], domain="vendor.ops")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[weight])
    save(helper.make_model(graph, functions=[function],
                           opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("vendor.ops", 1)]), str(path))
    return path


def onnx_with_external_data(folder: Path, *, symlink_to: Path | None = None) -> Path:
    """A real exported model whose weights live in ``weights.bin`` beside it (or in a
    symlink named so, pointing wherever the attacker likes)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load_from_string(_example_onnx_bytes())
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    if symlink_to is not None:
        (folder / "weights.bin").replace(symlink_to)
        (folder / "weights.bin").symlink_to(symlink_to)
    return folder / "model.onnx"


def deep_folders(root: Path, depth: int = 1_200) -> Path:
    """Nested folders deeper than Python's recursion limit, a pickle at the bottom."""
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for _ in range(depth):
        current = current / "d"
        os.mkdir(current)
    (current / "deep.pt").write_bytes(b"N.")
    return root


def million_opcode_pt(path: Path) -> Path:
    """A deflated torch zip whose data.pkl builds a list of a million ints: a few KB on disk."""
    body = b"\x80\x02]q\x00(" + b"K\x01" * 1_000_000 + b"e."
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/version", "3\n")
    return path


def sparse_onnx(path: Path, size: int = 1024**3) -> Path:
    """A 1 GiB file of zeros named .onnx (sparse: no disk used)."""
    with path.open("wb") as f:
        f.truncate(size)
    return path


def huge_safetensors_header(path: Path, megabytes: int = 20) -> Path:
    """A safetensors header of ~20 MB of tiny objects, which takes gigabytes as Python objects."""
    entry = b'"a%d":{},'
    body = b"{" + b"".join(entry % i for i in range(megabytes * 1024 * 1024 // 12))[:-1] + b"}"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    return path


def escape_sequence_name(folder: Path, canary: Path) -> Path:
    """A malicious pickle whose name clears the screen and prints a green ALL CLEAR."""
    path = folder / "evil\x1b[2J\x1b[32mALL CLEAR\x1b[0m.pkl"
    path.write_bytes(malicious.reduce_os_system(canary))
    return path


def markup_name(folder: Path, canary: Path) -> Path:
    path = folder / "evil[bold red]x.pkl"
    path.write_bytes(malicious.reduce_os_system(canary))
    return path


def undecodable_name(folder: Path, canary: Path) -> Path:
    path = Path(os.fsdecode(os.fsencode(folder) + b"/bad-\xff\xfe name.pkl"))
    path.write_bytes(malicious.reduce_os_system(canary))
    return path


def fifo(folder: Path) -> Path:
    path = folder / "pipe.txt"
    os.mkfifo(path)
    return path


def symlink_out(folder: Path, target: Path) -> Path:
    path = folder / "x.safetensors"
    path.symlink_to(target)
    return path


def write_all(folder: Path, canary: Path) -> list[str]:
    """Every hostile case into ``folder`` (the mixed batch of the benchmark and the
    end-to-end test); returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    outside = folder.parent / "outside-secret.txt"
    outside.write_text("root:x:0:0:secret\n")
    onnx_pickle_polyglot(folder / "face.onnx", canary)
    safetensors_zip_polyglot(folder / "weights.safetensors", canary)
    decoy_integer_pickle(folder / "decoy.pt", canary)
    protocol0_under_text_name(folder, canary)
    pickle_in_hidden_folder(folder, canary)
    numpy_object_array(folder, canary)
    joblib_file(folder, canary)
    custom_op_in_subgraph(folder / "subgraph.onnx")
    custom_op_in_local_function(folder / "function.onnx")
    onnx_with_external_data(folder / "external")
    onnx_with_external_data(folder / "external-symlink", symlink_to=folder.parent / "outside-weights.bin")
    deep_folders(folder / "deep")
    million_opcode_pt(folder / "million.pt")
    sparse_onnx(folder / "sparse.onnx")
    huge_safetensors_header(folder / "header.safetensors")
    escape_sequence_name(folder, canary)
    markup_name(folder, canary)
    undecodable_name(folder, canary)
    fifo(folder)
    symlink_out(folder, outside)
    for builder in malicious.RAW_STYLES.values():
        (folder / f"raw-{builder.__name__}.bin").write_bytes(builder(canary))
    malicious.torch_zip(folder / "torch-zip.pth", canary)
    malicious.torch_legacy(folder / "torch-legacy.ckpt", canary)
    return sorted(os.listdir(folder))
