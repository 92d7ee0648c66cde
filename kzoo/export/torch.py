"""``torch.export`` programs (``.pt2``), exported from torch, loaded with ``torch.export.load``.

The batch axis is a ``torch.export.Dim`` unless ``--batch N``. kzoo's metadata is the archive's extra file
``kzoo.json`` (``torch.export.load(path, extra_files={"kzoo.json": ""})``)."""

import json

from kzoo.export.base import Format

METADATA_FILE = "kzoo.json"
MAX_BATCH = 65536


class TorchExportFormat(Format):
    name = "torch"
    keras_format = "torch"
    backend = "torch"
    suffix = ".pt2"
    runtime = "torch.export"
    runtime_requires = ("torch",)

    def export_kwargs(self, model, input_signature, opset):
        import keras
        import torch

        specs = keras.tree.flatten(input_signature)
        if specs[0].shape[0] is not None:
            return {}
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        per_input = [{0: batch} for _ in specs]
        return {"dynamic_shapes": per_input[0] if len(specs) == 1 else [(per_input,)]}

    def load(self, path):
        import torch

        module = torch.export.load(path).module()

        def run(arrays):
            with torch.inference_mode():
                tensors = [torch.from_numpy(a) for a in arrays]
                output = module(tensors[0] if len(tensors) == 1 else tensors)
                return output.detach().cpu().numpy()

        return run

    def write_metadata(self, path, metadata):
        import torch

        program = torch.export.load(path)
        torch.export.save(program, path, extra_files={METADATA_FILE: json.dumps(metadata)})

    def read_metadata(self, path):
        import torch

        extra = {METADATA_FILE: ""}
        torch.export.load(path, extra_files=extra)
        return json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
