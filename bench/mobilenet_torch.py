"""PyTorch reference for bench/mobilenet.cpp: torchvision's mobilenet_v2
(random weights, channels_last, float32) at 192x192, timed like petal (median
of repeats after a warm-up). Prints one JSON object per row:
    {"row": ..., "value": ..., "unit": "img/s" | "MiB"}
Rows: inference_b64, inference_b1, frozen_step_b64 (frozen base in eval mode +
Flatten + Linear(5), Adam), finetune_step_b64 (everything trainable, BN in
training mode, SGD momentum 0.9), dense_step_b64 (the lab's dense model, Adam).
With --rss only fine-tuning steps run and the row is finetune_peak_rss (peak
resident set of this process), so run it in a process of its own.
Usage: mobilenet_torch.py --batch N --threads T --repeats R [--rss] [--only ROW]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision

SIZE = 192


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


def finetune_step_fn(batch):
    model = torchvision.models.mobilenet_v2(num_classes=5).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = images(batch), labels(batch)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rss", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b = args.batch

    if args.rss:
        step = finetune_step_fn(b)
        for _ in range(3):
            step()
        emit("finetune_peak_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "MiB")
        return

    def wanted(row):
        return not args.only or args.only in row

    full = torchvision.models.mobilenet_v2().to(memory_format=torch.channels_last).eval()
    for row, n in (("inference_b64", b), ("inference_b1", 1)):
        if not wanted(row):
            continue
        x = images(n)
        with torch.no_grad():
            s = median_seconds(lambda: full(x), args.repeats)
        emit(row, n / s, "img/s")

    if wanted("frozen_step_b64"):
        base = torchvision.models.mobilenet_v2().features.to(memory_format=torch.channels_last).eval()
        for p in base.parameters():
            p.requires_grad_(False)
        head = nn.Sequential(nn.Flatten(), nn.Linear(1280 * 6 * 6, 5))
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        x, y = images(b), labels(b)
        loss_fn = nn.CrossEntropyLoss()

        def frozen_step():
            opt.zero_grad()
            with torch.no_grad():
                f = base(x)
            loss_fn(head(f), y).backward()
            opt.step()

        emit("frozen_step_b64", b / median_seconds(frozen_step, args.repeats), "img/s")

    if wanted("finetune_step_b64"):
        emit("finetune_step_b64", b / median_seconds(finetune_step_fn(b), args.repeats), "img/s")

    if wanted("dense_step_b64"):
        dense = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE * 3, 500), nn.ReLU(), nn.Linear(500, 50), nn.ReLU(),
                              nn.Linear(50, 5))
        opt = torch.optim.Adam(dense.parameters(), lr=1e-3)
        x, y = torch.rand(b, SIZE, SIZE, 3), labels(b)
        loss_fn = nn.CrossEntropyLoss()

        def dense_step():
            opt.zero_grad()
            loss_fn(dense(x), y).backward()
            opt.step()

        emit("dense_step_b64", b / median_seconds(dense_step, args.repeats), "img/s")


if __name__ == "__main__":
    main()
