"""What every export format shares: the format interface, verification, metadata and the file placement.

A format (one module each: :mod:`kzoo.export.onnx`, ...) names the Keras backend it is exported from, the
packages it needs, its file suffix, and three jobs of its own: write the file (through Keras's
``Model.export``), load it back in its own runtime as a function ``arrays -> output``, and store kzoo's metadata
inside it (or beside it). Everything else lives here, numpy-only, so that ``kzoo predict FILE.onnx`` needs no
framework.
"""

import importlib.util
import json
import os
import shutil

import numpy as np

from kzoo.errors import KzooError

# Exported float32 outputs must match Keras's to this (absolute; relative for outputs larger than 1 such as a
# Siamese distance): runtimes reorder float sums, so the last few bits differ, never more.
TOLERANCE = 1e-4
VERIFY_SAMPLES = 1000
VERIFY_CHUNK = 250
EXTRA = "export"
METADATA_KEY = "kzoo"


class ExportError(KzooError):
    """An export the user asked for that cannot be done (format, dependency, output path, model)."""


class VerificationError(KzooError):
    """The exported file's outputs differ from the Keras model's beyond the tolerance (exit status 1)."""

    exit_code = 1


class Format:
    """One export format. Subclasses set the class attributes and implement the three hooks."""

    name = ""              # the --format value
    keras_format = ""      # the format name Keras's Model.export takes
    backend = ""           # the Keras backend the file is exported from
    suffix = ""            # file suffix ("" for a folder)
    requires = ()          # importable modules the export and its runtime need (besides the backend)
    runtime = ""           # the runtime that loads the file, for messages
    runtime_requires = ()  # what running an exported file needs (no Keras, no backend unless it is the runtime)
    static_rnn = ()        # recurrent layer classes unrolled over their (static) steps before export
    sidecar = False        # the metadata lives in ``<path>.json`` beside the file
    quantizes = ()         # the --quantize kinds the format can write (``quantize(path, calibration)``)

    def default_path(self, stem):
        return f"{stem}{self.suffix}"

    def artifacts(self, path):
        """Every path the export writes for ``path`` (a second file, a sidecar)."""
        return [path] + ([sidecar_path(path)] if self.sidecar else [])

    def check_path(self, path):
        if self.suffix and not path.endswith(self.suffix):
            raise ExportError(f"A {self.name} file ends with {self.suffix}. Received: --output {path}")

    def write(self, model, path, input_signature, opset=None):
        """Export ``model`` to ``path`` (runs on :attr:`backend`, with Keras imported)."""
        kwargs = self.export_kwargs(model, input_signature, opset)
        model.export(path, format=self.keras_format, verbose=False, input_signature=input_signature, **kwargs)

    def export_kwargs(self, model, input_signature, opset):
        return {}

    def load(self, path):
        """A function ``list of arrays -> output array`` running the file in its own runtime."""
        raise NotImplementedError

    def write_metadata(self, path, metadata):
        write_sidecar(path, metadata)

    def read_metadata(self, path):
        return read_sidecar(path)

    def missing_modules(self):
        modules = [*self.requires, self.backend]
        return [m for m in modules if importlib.util.find_spec(m) is None]


def sidecar_path(path):
    return f"{path}.json"


def write_sidecar(path, metadata):
    with open(sidecar_path(path), "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2)


def read_sidecar(path):
    try:
        with open(sidecar_path(path), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


# ---------------------------------------------------------------------------------------------- verification

def compare(reference, exported):
    """Max absolute difference, the same scaled by the reference above 1, and the top-1 agreement.

    The top-1 agreement is the share of samples (of positions, for a language model) whose arg-max class is the
    same; ``None`` for an output of one value (a distance). The caller checks ``scaled_diff`` against the
    tolerance (:data:`TOLERANCE` by default).
    """
    reference = np.asarray(reference, dtype="float64")
    exported = np.asarray(exported, dtype="float64").reshape(reference.shape)
    diff = np.abs(reference - exported)
    max_diff = float(diff.max()) if diff.size else 0.0
    scaled = float((diff / np.maximum(1.0, np.abs(reference))).max()) if diff.size else 0.0
    agreement = None
    if reference.shape[-1] > 1:
        agreement = float((reference.argmax(-1) == exported.argmax(-1)).mean())
    return {"max_abs_diff": max_diff, "scaled_diff": scaled, "top1_agreement": agreement,
            "finite": bool(np.isfinite(exported).all())}


def run_in_chunks(runner, inputs, batch=None, chunk=VERIFY_CHUNK):
    """Run ``runner`` over the samples in chunks (of exactly ``batch``, padded, for a fixed-batch file)."""
    size = len(inputs[0])
    step = batch or chunk
    outputs = []
    for start in range(0, size, step):
        part = [x[start:start + step] for x in inputs]
        count = len(part[0])
        if batch and count < batch:
            part = [np.concatenate([p, np.repeat(p[-1:], batch - count, axis=0)]) for p in part]
        outputs.append(np.asarray(runner(part))[:count])
    return np.concatenate(outputs)


def verification_inputs(specs, run_config, limit=VERIFY_SAMPLES, vocab_size=None, split="test", run_dir=None):
    """Real inputs for each model input, and in words which data they are.

    A run is verified on its own data: its recorded image files, its dataset's test split, its text. A bare
    checkpoint (no run) is verified on the digits shipped with kzoo. When a run's registered dataset cannot be
    loaded here (offline, a moved ``--data-dir``), the shipped digits stand in and the description says so;
    a run on an image folder that is gone is an error instead (other images say nothing about that model).

    Args:
        specs: ``[(name, shape without batch, dtype)]`` of the model inputs.
        run_config: the run's ``config.yaml`` as a dict, or ``{}`` for a bare checkpoint.
        vocab_size: the token count of a language model (ids are kept below it).
        split: ``"test"`` (what a verification scores) or ``"train"`` (what an int8 quantization calibrates
            on: the training images, the start of the text).
        run_dir: the run folder; a run on an image folder is verified on its recorded test files (and calibrated
            on its training files), decoded at the run's image size.

    Returns:
        ``(arrays, source)``: one array per input, and a sentence naming the data (stored in the exported
        file's metadata and printed by ``kzoo export``).

    Raises:
        ExportError: the run trained on an image folder whose files are not there.
    """
    from kzoo.data import load_dataset

    if all("int" in dtype for _, _, dtype in specs):
        data = run_config.get("data") or "timemachine"
        arrays = [_token_windows(run_config, shape, limit, vocab_size, split) for _, shape, _ in specs]
        return arrays, f"{data} text ({'its start' if split == 'train' else 'its end'}, the run's vocabulary)"
    if run_config.get("data_folder"):  # a run on an image folder: its own recorded files, or nothing
        images, source = _folder_images(run_dir, run_config, split, limit)
        return [_fit_images(images, shape) for _, shape, _ in specs], source
    data = run_config.get("data") if run_config.get("task_kind") != "lm" else None
    if data is None:
        dataset, source = load_dataset("mnist_embedded"), f"mnist_embedded {split} images (no run names the data)"
    else:
        try:
            dataset = load_dataset(data, data_dir=run_config.get("data_dir"))
            source = f"{data} {split} images (the run's data)"
        except KzooError as exc:
            dataset = load_dataset("mnist_embedded")
            source = (f"mnist_embedded {split} images instead of the run's data {data!r}, which could not be "
                      f"loaded here ({_first_sentence(exc)})")
    from kzoo.tasks.base import images_to_float

    images = images_to_float((dataset.x_train if split == "train" else dataset.x_test)[:limit])
    # token ids beside an image (a captioner's caption prefix): seeded ids below the vocabulary size
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, vocab_size or 2, (len(images), *shape)).astype(dtype) if "int" in dtype
              else _fit_images(images, shape) for _, shape, dtype in specs]
    if any("int" in dtype for _, _, dtype in specs):
        source += ", with seeded random token ids"
    if len(arrays) == 2 and not any("int" in dtype for _, _, dtype in specs):  # a pair model: image vs the next
        arrays[1] = np.roll(arrays[1], 1, axis=0)
        source += ", each paired with the next"
    return arrays, source


def _first_sentence(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= 160 else text[:157] + "..."


def _folder_images(run_dir, run_config, split, limit):
    """Float images of a folder run's recorded ``split`` files (``data_files.json``) and their description.

    Raises:
        ExportError: the run has no file lists, its folder is gone, or none of the files decodes.
    """
    from kzoo.data.image_folder import FILE_LIST, load_file_lists
    from kzoo.tasks.base import images_to_float

    record = load_file_lists(run_dir) if run_dir else None
    root = (record or {}).get("root") or (run_config.get("data") or "its image folder")
    if record is None:
        raise ExportError(f"The run trained on the image folder {root}, but {FILE_LIST} (its file lists) is not in "
                          f"{run_dir or 'the checkpoint folder'}; kzoo verifies a folder run on its own "
                          f"{split} files only. Export from the run folder.")
    if not os.path.isdir(root):
        raise ExportError(f"The run trained on the image folder {root}, which is not there any more (moved or "
                          f"deleted); kzoo verifies a folder run on its own {split} files, not on unrelated "
                          f"images. Put the folder back at {root} and export again.")
    # a run without test files (--test-split 0) is verified on its validation, else training, files
    used = next((name for name in (split, "val", "train") if record.get(name)), split)
    rows = record.get(used) or []
    paths = [os.path.join(root, p) for p, _ in rows[:limit]]
    images, _ = decode_readable(paths, record["image_size"], record["channels"]) if paths else (None, [])
    if images is None:
        raise ExportError(f"None of the run's {len(rows)} recorded {used} files under {root} could be read; "
                          f"kzoo verifies a folder run on its own files.")
    return images_to_float(images), f"{len(images):,} of the run's recorded {used} files under {root}"


def decode_readable(paths, image_size, channels):
    """``(uint8 images, positions)`` of the files among ``paths`` that decode (``(None, [])`` when none does)."""
    from kzoo.data.image_decode import decode_images

    images = decode_images(list(paths), tuple(image_size), int(channels), lambda path, exc: None)
    keep = [i for i, image in enumerate(images) if image is not None]
    return (np.stack([images[i] for i in keep]) if keep else None), keep


def _fit_images(images, shape):
    """Images ``(N, H, W, C)`` shaped for an input of ``shape``: rows as steps, resized, channels repeated."""
    if len(shape) == 2:  # a sequence model reads an image row by row
        images = images.mean(axis=-1)
        return _resize(images[..., None], shape[0], shape[1])[..., 0]
    height, width, channels = shape
    images = _resize(images, height, width)
    if images.shape[-1] != channels:
        images = np.repeat(images.mean(axis=-1, keepdims=True), channels, axis=-1)
    return np.ascontiguousarray(images, dtype="float32")


def _resize(images, height, width):
    if images.shape[1:3] == (height, width):
        return images
    rows = (np.arange(height) * images.shape[1] / height).astype(int)
    cols = (np.arange(width) * images.shape[2] / width).astype(int)
    return images[:, rows][:, :, cols]


def _token_windows(run_config, shape, limit, vocab_size, split="test"):
    from kzoo.data import load_dataset
    from kzoo.tasks.samplers import windows
    from kzoo.tasks.vocab import CharVocab

    data = run_config.get("data") or "timemachine"
    dataset = load_dataset(data, data_dir=run_config.get("data_dir"))
    tokens = run_config.get("vocab_tokens")
    vocab = CharVocab(run_config.get("vocab_kind", "letters"), tokens) if tokens else CharVocab.build(
        "letters", dataset.text)
    span = (limit + 1) * shape[0] + 1
    ids = vocab.encode(dataset.text[:span] if split == "train" else dataset.text[-span:])
    if vocab_size:
        ids = np.where(ids < vocab_size, ids, 0).astype("int32")
    x, _ = windows(ids, shape[0])
    return x[:limit]


# ------------------------------------------------------------------------------------------------- metadata

def describe_task(task):
    if task == "lm":
        return "character token ids (int32), one window of the model's sequence length; see vocab_tokens"
    return ("float32 pixels scaled to [0, 1] (uint8 / 255), channels last; grayscale MNIST-style images are light "
            "ink on a dark background; sequence models read an image's rows as steps")


# -------------------------------------------------------------------------------------------- file placement

def temporary_path(path, fmt):
    folder, base = os.path.split(os.path.abspath(path))
    stem = base[: -len(fmt.suffix)] if fmt.suffix else base
    return os.path.join(folder, f".tmp-{stem}-{os.getpid()}{fmt.suffix}")


def remove(paths):
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


def place(fmt, tmp, path):
    """Move every artifact of the verified export at ``tmp`` to ``path`` (replacing an old export)."""
    for source, target in zip(fmt.artifacts(tmp), fmt.artifacts(path)):
        if not os.path.lexists(source):
            continue
        if os.path.isdir(target):
            old = f"{target}.old-{os.getpid()}"
            os.replace(target, old)
            os.replace(source, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(source, target)
