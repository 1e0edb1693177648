"""Turning sources into loaded models, above the checks and pairing: a candidate
read once for every check, a model source loaded as an embedder only after it
passes file safety, trusted models loaded once per process (so once per batch,
and once per parallel worker), and a saved pair reloaded with its two models."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from fraudit.detectors.base import Status
from fraudit.detectors.check import LoadedCandidate, TrustedModels
from fraudit.detectors.file_safety import FileSafetyCheck
from fraudit.errors import CorruptFileError, SourceNotFoundError, UnsafePickleError, UnsupportedFormatError
from fraudit.formats import Format, read_candidate
from fraudit.formats.load import onnx_signature
from fraudit.formats.onnx_layers import recognise_onnx_export
from fraudit.models.registry import ArchitectureMatch, match_of, recognise, recognise_onnx_embedder
from fraudit.models.spec import Preprocessing
from fraudit.pairing.audit import PairingSetup
from fraudit.pairing.embedders import DLIB, DlibEmbedder, Embedder
from fraudit.pairing.pair import PairCalibration, load_pair
from fraudit.sources import Candidate, SourceFailure, resolve_sources


def load_candidate(candidate: Candidate, *, trusted_models: TrustedModels | None = None,
                   preprocessing: Preprocessing | None = None) -> LoadedCandidate:
    """Read every file of ``candidate`` safely and recognise its architecture;
    ``preprocessing``: how the user says it takes its faces (over what was read)."""
    read = read_candidate(candidate.files, candidate.locations)
    architecture, tensors, folded = None, read.tensors, {}
    if tensors is not None:
        size = preprocessing.input_size if preprocessing else None
        architecture, tensors, folded = _recognise(candidate, tensors, read.formats, input_size=size)
        if preprocessing is not None and architecture.input_size is not None:  # an embedder fraudit can run
            architecture = preprocessing.apply(architecture)
    return LoadedCandidate(
        source=candidate.source, files=candidate.files, locations=candidate.locations, readings=read.readings,
        tensors=tensors, architecture=architecture, load_error=read.load_error, folded=folded,
        trusted_models=trusted_models or trusted_embedder,
    )


def _recognise(candidate: Candidate, tensors: dict, formats: tuple[Format, ...],
               input_size: int | None = None) -> tuple[ArchitectureMatch, dict, dict]:
    """The architecture, the tensors the checks read and the folded ones: an ONNX export
    of a registered architecture is recognised from its graph, its exact layers renamed
    to the architecture's keys, and its folded layers kept apart (named in the match)."""
    match = recognise({k: tuple(v.shape) for k, v in tensors.items()})
    if match.known or Format.ONNX not in formats or len(candidate.files) != 1:
        return match, tensors, {}
    export = recognise_onnx_export(candidate.files[0], tensors)
    if export is not None:
        # the parameters are the embedder's, as a checkpoint's are counted: a head exported with it is not
        head = export.layers.get(export.spec.head_key) if export.spec.head_key else None
        parameters = match.parameters - (head.weight.size if head is not None else 0)
        return (replace(match_of(export.spec, dict(export.spec.required)), parameters=parameters,
                        recognised_from="ONNX graph topology", folded_layers=export.folded),
                export.exact_tensors(), export.folded_tensors())
    signature = onnx_signature(candidate.files[0])
    onnx_match = signature and recognise_onnx_embedder(*signature, parameters=match.parameters, input_size=input_size)
    return onnx_match or match, tensors, {}


def load_embedder(source: str, *, token: str | bool | None = None) -> Embedder:
    """``dlib``, or a model source (file, folder, Hub repo) that passes file safety."""
    if source == DLIB:
        return DlibEmbedder()
    resolved = resolve_sources([source], token=token)
    candidates = [c for c in resolved if isinstance(c, Candidate)]
    failures = [f for f in resolved if isinstance(f, SourceFailure)]
    if failures or len(candidates) != 1:
        reason = failures[0].reason if failures else f"{len(candidates)} models found, name one"
        raise SourceNotFoundError(f"{source}: cannot use as an embedder ({reason})", path=source)
    loaded = load_candidate(candidates[0])
    safety = FileSafetyCheck().run(loaded)
    if safety.status is Status.FAIL:
        raise UnsafePickleError(f"{source}: refused by file safety ({safety.summary})", path=source)
    if not loaded.loaded or safety.status > Status.FAIL:
        raise UnsupportedFormatError(f"{source}: refused by file safety ({safety.summary})", path=source)
    return loaded.embedder


@lru_cache(maxsize=4)
def trusted_embedder(source: str) -> Embedder:
    """A trusted model, loaded once per process: a batch pairs every candidate with it."""
    return load_embedder(source)


@dataclass(frozen=True)
class SavedPair:
    """A pair folder with the two models it was calibrated on and its setup."""

    pair: PairCalibration
    candidate: Embedder
    trusted: Embedder
    setup: PairingSetup


def load_pair_models(folder: Path) -> SavedPair:
    """A saved pair and its two embedders, refused if either model changed since calibration."""
    pair = load_pair(folder)
    try:
        candidate_source, trusted_source = pair.info["candidate_source"], pair.info["trusted_source"]
        setup = PairingSetup.from_dict(pair.info["setup"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{folder}: the pair does not say which models and setup it was calibrated with "
                               f"({type(exc).__name__}: {exc})", path=folder) from exc
    candidate, trusted = load_embedder(candidate_source), load_embedder(trusted_source)
    pair.verify(candidate, trusted)
    return SavedPair(pair, candidate, trusted, setup)
