"""A plugin's models from Python: nothing to register, the installed plugin is enough.

    pip install ./plugins/kzoo-mobilenet
    python examples/plugin_from_python.py          # about a minute on 2 CPU cores

Builds SqueezeNet 1.1 (a plugin model with a custom ``Fire`` layer), trains MobileNet v1 for one short epoch
on the embedded MNIST digits, evaluates the run, and round-trips the model through a ``.keras`` file.
"""

import os
import sys
import tempfile

import kzoo
from kzoo.errors import KzooError


def main():
    if "mobilenet_v1" not in kzoo.list_models():
        sys.exit("The example plugin is not installed: pip install ./plugins/kzoo-mobilenet")
    print({key: kzoo.model_info("squeezenet1_1")[key] for key in ("distribution", "family", "params")})

    model = kzoo.create_model("squeezenet1_1", input_shape=(28, 28, 1), num_classes=10)
    print(model.name, f"{model.count_params():,} parameters at 28x28x1 / 10 classes")

    with tempfile.TemporaryDirectory() as folder:
        result = kzoo.train("mobilenet_v1", options={"alpha": 0.25}, epochs=1, limit=500, batch_size=50, quiet=True,
                            output=os.path.join(folder, "run"))
        print("trained:", {key: result[key] for key in ("run_dir", "accuracy")})
        print("evaluated accuracy:", kzoo.evaluate(result["run_dir"], limit=200)["accuracy"])

        path = os.path.join(folder, "squeezenet.keras")
        model.save(path)
        loaded = kzoo.load_model(path)  # kzoo imports the plugin's layer module (entry point kzoo.layers)
        print("reloaded:", loaded.name, type(loaded.get_layer("fire2")).__name__)


if __name__ == "__main__":
    try:
        main()
    except KzooError as exc:
        sys.exit(f"Error: {exc}")
