"""kzoo from Python: the same names as the CLI.

    python examples/quickstart.py            # about a minute on 2 CPU cores, offline
"""

import os
import tempfile

import kzoo

print("ResNets:", kzoo.list_models("resnet*"))
info = kzoo.model_info("lenet5")
print("lenet5 options:", {k: v["default"] for k, v in info["options"].items()})

report = kzoo.summary("lenet5", input_shape=(28, 28, 1))
print(f"lenet5: {report['trainable_params']:,} parameters, {report['macs']:,} MACs per sample")

with tempfile.TemporaryDirectory() as tmp:
    run = kzoo.train("lenet5", epochs=1, limit=3000, quiet=True, output=os.path.join(tmp, "run"))
    print(f"test accuracy after one epoch on 3,000 digits: {run['accuracy']:.3f}")
    scores = kzoo.evaluate(run["run_dir"], limit=1000)
    print(f"re-evaluated on 1,000 test digits: {scores['accuracy']:.3f}")

    from PIL import Image

    digits = kzoo.load_dataset("mnist_embedded")
    path = os.path.join(tmp, "digit.png")
    Image.fromarray(digits.x_test[0]).save(path)
    top = kzoo.predict(run["run_dir"], [path], top_k=2)[0]["top"]
    print(f"digit.png (a {digits.y_test[0]}): predicted {top[0]['name']} ({top[0]['probability']:.2f})")
