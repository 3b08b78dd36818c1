"""PyTorch reference for bench/mobilenet.cpp --device cuda: torchvision's
mobilenet_v2 (random weights, channels_last, float32) at 192x192, timed like
petal (median of repeats after a warm-up). Prints one JSON object per row:
    {"row": ..., "value": ..., "unit": "img/s" | "MiB"}
Rows inference_bB, finetune_step_bB (everything trainable, BN in training
mode, SGD momentum 0.9) and finetune_peak_device_bB (MiB,
torch.cuda.max_memory_allocated during the fine-tuning steps) for B = --batch,
every sample ended by torch.cuda.synchronize(), FP32 (TF32 off for cuDNN and
matmul, as petal's default), cudnn.benchmark on.
Usage: mobilenet_torch.py --device cuda --batch B --repeats R

The CPU comparison (bench/mobilenet without --device) runs
bench/mobilenet_peers.py instead: every peer (ONNX Runtime, PyTorch,
TensorFlow) on petal's own weights and input.

Without torchvision (a bare CUDA torch install) the same MobileNetV2 is built
from the plain definition below.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn

try:
    import torchvision
except ImportError:  # a CUDA torch without torchvision: use the definition below
    torchvision = None

SIZE = 192


def _conv_bn(cin, cout, kernel, stride, groups=1, relu6=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu6:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class _InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn(cin, hidden, 1, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, 1, relu6=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class _MobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2's architecture (width 1.0)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                    (6, 320, 1, 1)]
        layers, cin = [_conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in settings:
            for i in range(n):
                layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn(cin, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes=1000):
    if torchvision is not None:
        return torchvision.models.mobilenet_v2(num_classes=num_classes)
    return _MobileNetV2(num_classes)


def median_seconds(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def emit(row, value, unit):
    print(json.dumps({"row": row, "value": value, "unit": unit}), flush=True)


def images(n):
    return torch.randn(n, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last)


def labels(n):
    return torch.randint(0, 5, (n,))


def cuda_rows(device, b, repeats):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device(device)

    def timed(fn):
        def run():
            fn()
            torch.cuda.synchronize(dev)
        return median_seconds(run, repeats, warmup=2)

    full = mobilenet_v2().to(dev, memory_format=torch.channels_last).eval()
    x = images(b).to(dev)
    with torch.no_grad():
        emit(f"inference_b{b}", b / timed(lambda: full(x)), "img/s")
    del full, x
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    model = mobilenet_v2(num_classes=5).to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = images(b).to(dev), labels(b).to(dev)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    emit(f"finetune_step_b{b}", b / timed(step), "img/s")
    emit(f"finetune_peak_device_b{b}", torch.cuda.max_memory_allocated(dev) / (1024.0 * 1024.0), "MiB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if not args.device.startswith("cuda"):
        parser.error("the CPU rows are bench/mobilenet_peers.py's; this script times --device cuda[:N]")
    torch.manual_seed(0)
    cuda_rows(args.device, args.batch, args.repeats)


if __name__ == "__main__":
    main()
