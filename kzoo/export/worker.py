"""The export subprocess: ``python -m kzoo.export.worker JOB.json RESULT.json``.

It runs on the backend that serves the format (the parent sets ``KERAS_BACKEND``): loads the checkpoint,
computes the Keras model's outputs on the verification data, exports to the temporary path, writes the
metadata, loads the file in its own runtime, runs the same data and compares. The parent decides what the
result means for the file; this process only reports.
"""

import json
import sys
import time
import traceback

import numpy as np

from kzoo.errors import first_line


def run_job(job):
    import keras

    from kzoo.engine.checkpoints import load_model
    from kzoo.export import FORMATS
    from kzoo.export.base import compare, run_in_chunks, verification_inputs

    fmt = FORMATS[job["format"]]
    model = load_model(job["source"], trust=job.get("trust", False), compile=False)
    batch = job.get("batch")
    specs = [(t.name.split(":")[0], tuple(t.shape[1:]), str(t.dtype)) for t in model.inputs]
    if any(d is None for _, shape, _ in specs for d in shape):
        return {"error": "unsupported", "message": (
            f"{model.name} has inputs of unknown size {[s for _, s, _ in specs]}; the exported file needs fixed "
            f"shapes apart from the batch axis.")}
    if keras.config.dtype_policy().name != "float32" or any(
            w.dtype != "float32" for w in model.weights if "int" not in str(w.dtype)):
        return {"error": "unsupported", "message": f"{model.name} is not float32; kzoo exports float32 models."}
    # token ids below the smallest vocabulary: valid for every embedding (a seq2seq model has two of them)
    vocab_size = min((layer.input_dim for layer in model._flatten_layers(include_self=False)
                      if isinstance(layer, keras.layers.Embedding)), default=None)
    inputs, verified_on = verification_inputs(specs, job.get("run_config") or {}, job["limit"], vocab_size,
                                              run_dir=job.get("run_dir"))

    def keras_runner(arrays):
        out = model(arrays[0] if len(arrays) == 1 else list(arrays), training=False)
        return np.asarray(keras.ops.convert_to_numpy(out))

    reference = run_in_chunks(keras_runner, inputs)
    signature = [keras.InputSpec(shape=(batch, *shape), dtype=dtype, name=name) for name, shape, dtype in specs]
    signature = signature if len(signature) == 1 else [signature]
    exported_model = in_inference_mode(unrolled(model, fmt.static_rnn) if fmt.static_rnn else model)
    try:
        fmt.write(exported_model, job["tmp"], signature, job.get("opset"))
    except Exception as exc:  # the converter's own reason, reported as "this format cannot hold the model"
        return {"error": "unsupported", "message": _reason(exc), "log": traceback.format_exc()[-3000:]}
    quantization = None
    if job.get("quantize"):
        from kzoo.export.quantize import CALIBRATION_SAMPLES

        calibration, calibrated_on = verification_inputs(specs, job.get("run_config") or {}, CALIBRATION_SAMPLES,
                                                         vocab_size, split="train", run_dir=job.get("run_dir"))
        try:
            quantization = dict(fmt.quantize(job["tmp"], calibration, batch), calibration_data=calibrated_on)
        except Exception as exc:  # the quantizer's own reason
            return {"error": "unsupported", "message": f"int8 quantization failed: {_reason(exc)}",
                    "log": traceback.format_exc()[-3000:]}
    from kzoo.export.base import describe_task

    task = job["metadata"].get("task") or ("lm" if "int" in specs[0][2] else
                                           "metric_learning" if len(specs) == 2 else "classification")
    metadata = dict(job["metadata"], model=job["metadata"].get("model") or model.name, task=task,
                    preprocessing=describe_task(task), inputs=[
        {"name": name, "shape": [batch, *shape], "dtype": dtype} for name, shape, dtype in specs],
        outputs=[{"shape": [batch, *model.outputs[0].shape[1:]], "dtype": str(model.outputs[0].dtype)}],
        exported_from=keras.backend.backend(), keras_version=keras.__version__, batch=batch or "dynamic",
        verification_data=verified_on)
    if quantization:
        metadata["quantization"] = quantization
    fmt.write_metadata(job["tmp"], metadata)
    runner = fmt.load(job["tmp"])
    exported = run_in_chunks(runner, inputs, batch)
    return dict(compare(reference, exported), samples=len(inputs[0]), verification_data=verified_on,
                metadata=metadata)


def in_inference_mode(model):
    """A functional model that calls ``model`` with ``training=False`` (same layers, same weights).

    Keras's exporters trace ``model(inputs)`` without ``training``, and Keras 3.15 lets a layer whose ``call``
    defaults to ``training=True`` (its preprocessing layers: the ``Resizing`` of kzoo's input adapter) set the
    value for every layer after it in the same call: the file then held batch norm with batch statistics and
    moving-average updates (a ``squeeze`` of the moments that torch's ONNX exporter cannot convert).
    """
    import keras

    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=model.name)


def unrolled(model, kinds):
    """A copy of ``model`` with its recurrent layers of the classes named in ``kinds`` unrolled over their
    (static) steps; same weights. ``model`` itself when it has none."""
    import keras

    config = model.get_config()
    stack, found = [config], False
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") in kinds and isinstance(item.get("config"), dict):
                item["config"]["unroll"] = found = True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if not found:
        return model
    clone = model.__class__.from_config(config, custom_objects=keras.saving.get_custom_objects())
    clone.set_weights(model.get_weights())
    return clone


def _reason(exc):
    """``TypeError: the first line of its message`` (at most 300 characters of it)."""
    return f"{type(exc).__name__}: {first_line(exc, type(exc).__name__)[:300]}"


def main(argv=None):
    job_path, result_path = (argv or sys.argv[1:])[:2]
    with open(job_path, encoding="utf-8") as handle:
        batch = json.load(handle)
    from kzoo.backend import set_backend

    set_backend(batch["backend"])
    import keras

    from kzoo.errors import KzooError

    results = []
    for job in batch["jobs"]:
        started = time.perf_counter()
        try:
            results.append(run_job(job))
        except KzooError as exc:
            results.append({"error": "user", "message": str(exc)})
        except Exception as exc:  # reported to the parent, which removes the temporary file
            results.append({"error": "crashed", "message": _reason(exc), "log": traceback.format_exc()[-3000:]})
        results[-1]["seconds"] = round(time.perf_counter() - started, 2)  # load, reference, export, verification
        keras.backend.clear_session(free_memory=True)
        with open(result_path, "w", encoding="utf-8") as handle:  # so far: a crash later keeps these
            json.dump(results, handle, default=str)


if __name__ == "__main__":
    main()
