"""Hand-written native PyTorch versions of kzoo's benchmark models (same layer sizes, NCHW, torch.nn).

These are the yardstick of ``kzoo bench`` and ``benchmarks/train_throughput.py``: the loop a PyTorch user would
write by hand, in the style of the reference notes (data already a tensor on the device, Adam,
``nn.CrossEntropyLoss`` on logits; mixed precision with ``torch.autocast`` and, for float16, a ``GradScaler``).
Each mirrors the kzoo architecture at a 28x28x1 input:

* ``lenet5``: zero-pad to 32x32, conv 6@5x5, max-pool, conv 16@5x5, max-pool, 120, 84, 10 (ReLU);
* ``convnet2``: conv 32@5x5 same, pool, conv 64@5x5 same, pool, FC 1000, dropout 0.5, ReLU, 10;
* ``resnet18``: ResNet-18 with kzoo's ``small_stem=True`` (3x3/1 stem, no max pooling), torchvision blocks;
* ``lstm``/``gru``: one recurrent layer of 128 units over the 28 image rows, then 10 logits (kzoo with
  ``input_norm=False``: its default batch-normalises the inputs first);
* ``mlp``: flatten, 256, 128, 10 (ReLU).
"""

import torch
from torch import nn

MODELS = ("lenet5", "convnet2", "resnet18", "lstm", "gru", "mlp")
KZOO_OPTIONS = {"resnet18": {"small_stem": True}, "lstm": {"input_norm": False}, "gru": {"input_norm": False}}


def kzoo_input_shape(name):
    """The input shape (channels last) at which kzoo's model equals the native one."""
    return (28, 28) if name in ("lstm", "gru") else (28, 28, 1)


def mixed_dtype(device):
    """The autocast dtype of a mixed-precision run, the one kzoo's trainer picks (:mod:`kzoo.engine.precision`):
    bfloat16 on a CPU and on GPUs that compute in it (Ampere on), else float16."""
    if str(device).startswith("cuda") and not torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.float16
    return torch.bfloat16


class _Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.shortcut(x))


class _Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(-1, 28, 28))
        return self.fc(out[:, -1])


def make(name):
    if name == "lenet5":
        return nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name == "convnet2":
        return nn.Sequential(nn.Conv2d(1, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, 1, 2),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 1000), nn.Dropout(0.5),
                             nn.ReLU(), nn.Linear(1000, 10))
    if name == "resnet18":
        stack = [nn.Conv2d(1, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stack += [_Basic(cin, cout, stride), _Basic(cout, cout, 1)]
            cin = cout
        return nn.Sequential(*stack, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))
    if name in ("lstm", "gru"):
        return _Recurrent(name)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    raise ValueError(f"no native model {name!r}; known: {', '.join(MODELS)}")


class NativeLoop:
    """The hand-written loop: random batches of device tensors, Adam 1e-3, cross-entropy on logits.

    ``mixed=True`` runs forward and loss under ``torch.autocast`` (:func:`mixed_dtype`); float16 with a
    ``GradScaler``, as the PyTorch AMP recipe writes it.
    """

    def __init__(self, name, x_nhwc, y, device="cpu", lr=1e-3, seed=0, mixed=False):
        torch.manual_seed(seed)
        self.device = device
        self.model = make(name).to(device).train()
        self.x = torch.as_tensor(x_nhwc).permute(0, 3, 1, 2).contiguous().to(device) if x_nhwc.ndim == 4 \
            else torch.as_tensor(x_nhwc).to(device)
        self.y = torch.as_tensor(y).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr)
        self.loss = nn.CrossEntropyLoss()
        self.autocast_dtype = mixed_dtype(device) if mixed else None
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None

    def _autocast(self):
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        return torch.autocast(device_type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def run(self, steps, batch_size):
        order = torch.randperm(len(self.y), device=self.device)
        for step in range(steps):
            start = (step * batch_size) % (len(self.y) - batch_size + 1)
            idx = order[start:start + batch_size]
            with self._autocast():
                loss = self.loss(self.model(self.x[idx]), self.y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
        self.synchronize()

    def predict(self, x):
        """Softmax probabilities of one batch (a device tensor, NCHW), in eval mode under ``inference_mode``."""
        self.model.eval()
        with torch.inference_mode(), self._autocast():
            out = torch.softmax(self.model(x).float(), -1)
        self.synchronize()
        self.model.train()
        return out

    def synchronize(self):
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()
