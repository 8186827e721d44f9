#!/usr/bin/python3
"""Trains CloudEdge's sensor anomaly model and writes it as ONNX with its manifest and reference samples.

Run with Debian's Python (python3-numpy, python3-onnx): /usr/bin/python3 tools/models/train_anomaly.py
It rebuilds models/anomaly/v1 and models/anomaly/v2 deterministically (fixed seeds). Nothing is downloaded:
the training data is generated here from the sensor kinds the simulator produces.

The model is a small MLP (features -> ReLU -> ReLU -> sigmoid) trained with Adam on generated readings with
injected anomalies. Its input is the feature vector defined in FEATURES below, which the edge agent computes
per reading; its output is an anomaly score in [0, 1], compared with the manifest's threshold.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

KINDS = ["temperature", "humidity", "pressure", "vibration"]
# Per kind: centre and half-width of the normal range (so the normal range maps to [-1, 1]), and the floor
# for the recent standard deviation (in the kind's unit), so a very steady signal does not divide by ~0.
CENTER = {"temperature": 25.0, "humidity": 50.0, "pressure": 1012.5, "vibration": 1.75}
SCALE = {"temperature": 5.0, "humidity": 20.0, "pressure": 12.5, "vibration": 1.25}
MIN_STD = {"temperature": 0.05, "humidity": 0.2, "pressure": 0.1, "vibration": 0.05}
UNIT = {"temperature": "C", "humidity": "%RH", "pressure": "hPa", "vibration": "mm/s RMS"}
WINDOW = 32
CLIP = 10.0
FEATURE_COUNT = 8

FEATURES = [
    {"index": 0, "name": "kind_temperature", "definition": "1 if the reading's kind is temperature, else 0"},
    {"index": 1, "name": "kind_humidity", "definition": "1 if the reading's kind is humidity, else 0"},
    {"index": 2, "name": "kind_pressure", "definition": "1 if the reading's kind is pressure, else 0"},
    {"index": 3, "name": "kind_vibration", "definition": "1 if the reading's kind is vibration, else 0"},
    {"index": 4, "name": "value_norm", "definition": "clip((value - center[kind]) / scale[kind], -10, 10)"},
    {"index": 5, "name": "recent_z", "definition": "clip((value - mean) / max(std, minStd[kind]), -10, 10) over the device's previous readings of this kind in the window; 0 when fewer than 2"},
    {"index": 6, "name": "delta_norm", "definition": "clip((value - previous) / scale[kind], -10, 10) with previous the device's last reading of this kind; 0 when none"},
    {"index": 7, "name": "recent_std_norm", "definition": "clip(std / scale[kind], 0, 10) over the window; 0 when fewer than 2"},
]


def features_for_series(kind, values):
    """The feature rows of one device's readings of one kind, in order. The window holds every previous
    reading (anomalous ones too), as the edge agent keeps it: the last WINDOW readings before this one."""
    k = KINDS.index(kind)
    rows = np.zeros((len(values), FEATURE_COUNT), dtype=np.float64)
    for i, v in enumerate(values):
        rows[i, k] = 1.0
        rows[i, 4] = np.clip((v - CENTER[kind]) / SCALE[kind], -CLIP, CLIP)
        history = values[max(0, i - WINDOW):i]
        if len(history) >= 2:
            mean = float(np.mean(history))
            std = float(np.std(history))  # population standard deviation
            rows[i, 5] = np.clip((v - mean) / max(std, MIN_STD[kind]), -CLIP, CLIP)
            rows[i, 7] = np.clip(std / SCALE[kind], 0.0, CLIP)
        if len(history) >= 1:
            rows[i, 6] = np.clip((v - history[-1]) / SCALE[kind], -CLIP, CLIP)
    return rows


def normal_series(kind, n, rng):
    """One device's normal readings. Each device gets its own level, cycle and noise (0.5x to 3x a typical
    sensor's), so the model learns the device-relative features rather than one simulator's exact noise."""
    t = np.arange(n)
    period = rng.uniform(150, 900)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * t / period + phase)
    noise = rng.uniform(0.5, 3.0)
    if kind == "temperature":
        drift = np.cumsum(rng.normal(0, 0.02, n))
        v = rng.uniform(22, 28) + 2.0 * wave + drift + rng.normal(0, 0.1 * noise, n)
        return np.clip(v, 20, 30)
    if kind == "humidity":
        v = rng.uniform(40, 60) + 8.0 * wave + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.5 * noise, n)
        return np.clip(v, 30, 70)
    if kind == "pressure":
        v = rng.uniform(1005, 1020) + 3.0 * wave + np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 0.2 * noise, n)
        return np.clip(v, 1000, 1025)
    v = rng.uniform(0.8, 2.2) + 0.3 * wave + rng.normal(0, 0.1 * noise, n)
    return np.clip(np.abs(v), 0.5, 3.0)


def inject(kind, value, rng, strong=False):
    """An anomalous reading in place of a normal one: a spike or step far outside the device's recent behaviour."""
    lo = 1.0 if not strong else 1.6
    if kind == "temperature":
        return value + rng.choice([-1, 1]) * rng.uniform(4 * lo, 14)
    if kind == "humidity":
        return float(np.clip(value + rng.choice([-1, 1]) * rng.uniform(15 * lo, 40), 0, 100))
    if kind == "pressure":
        return value + rng.choice([-1, 1]) * rng.uniform(8 * lo, 30)
    return value * rng.uniform(2.0 * lo, 5.0) + rng.uniform(3 * lo, 10)  # vibration spikes only go up


def make_dataset(devices_per_kind, length, anomaly_rate, rng):
    xs, ys = [], []
    for kind in KINDS:
        for _ in range(devices_per_kind):
            values = normal_series(kind, length, rng)
            labels = np.zeros(length)
            for i in range(WINDOW, length):
                if rng.random() < anomaly_rate:
                    values[i] = inject(kind, values[i], rng)
                    labels[i] = 1.0
            xs.append(features_for_series(kind, values))
            ys.append(labels)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


def train(x, y, hidden, epochs, seed, lr=0.01, batch=256):
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1]] + list(hidden) + [1]
    weights = [rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float64) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(b) for b in sizes[1:]]
    params = weights + biases
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    # Anomalies are rare: weight them up so the classifier does not learn "always normal".
    pos_weight = float((1 - y.mean()) / max(y.mean(), 1e-6))
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            xb, yb = x[idx].astype(np.float64), y[idx].astype(np.float64)[:, None]
            acts = [xb]
            for w, b in zip(weights[:-1], biases[:-1]):
                acts.append(np.maximum(acts[-1] @ w + b, 0.0))
            logits = acts[-1] @ weights[-1] + biases[-1]
            p = 1.0 / (1.0 + np.exp(-logits))
            sample_w = np.where(yb > 0.5, pos_weight, 1.0)
            grad = (p - yb) * sample_w / len(xb)
            gw, gb = [None] * len(weights), [None] * len(biases)
            for layer in range(len(weights) - 1, -1, -1):
                gw[layer] = acts[layer].T @ grad
                gb[layer] = grad.sum(axis=0)
                if layer > 0:
                    grad = (grad @ weights[layer].T) * (acts[layer] > 0)
            step += 1
            for i, g in enumerate(gw + gb):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mh = m[i] / (1 - 0.9 ** step)
                vh = v[i] / (1 - 0.999 ** step)
                params[i] -= lr * mh / (np.sqrt(vh) + 1e-8)
    return [w.astype(np.float32) for w in weights], [b.astype(np.float32) for b in biases]


def score(x, weights, biases):
    a = x.astype(np.float32)
    for w, b in zip(weights[:-1], biases[:-1]):
        a = np.maximum(a @ w + b, 0.0)
    logits = a @ weights[-1] + biases[-1]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def to_onnx(weights, biases, name, version):
    nodes, inits = [], []
    current = "features"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        inits.append(numpy_helper.from_array(b, f"B{i}"))
        out = f"h{i}" if i < len(weights) - 1 else "logit"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [out], name=f"dense{i}"))
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"{out}_relu"], name=f"relu{i}"))
            current = f"{out}_relu"
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["score"], name="sigmoid"))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FEATURE_COUNT])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="cloudedge-train_anomaly",
                              producer_version="1", doc_string=f"CloudEdge sensor anomaly model {version}")
    model.ir_version = 8
    model.model_version = int(version.split(".")[0])
    onnx.checker.check_model(model)
    return model


def reference_samples(weights, biases, threshold, rng):
    """A small fixed set of readings for the tests and benchmarks: per kind one device's series (normal, with a
    few strong injected anomalies), their features and the model's scores as computed here."""
    series = []
    for kind in KINDS:
        values = normal_series(kind, 96, rng)
        anomalies = sorted(rng.choice(np.arange(WINDOW + 8, 96, 12), size=3, replace=False).tolist())
        for i in anomalies:
            values[i] = inject(kind, values[i], rng, strong=True)
        values = np.round(values, 6)  # what samples.json stores: features are computed from exactly these
        feats = features_for_series(kind, values)
        scores = score(feats.astype(np.float32), weights, biases)[:, 0]
        series.append({
            "kind": kind,
            "values": [round(float(v), 6) for v in values],
            "anomalyIndices": anomalies,
            "features": [[round(float(f), 6) for f in row] for row in feats],
            "scores": [round(float(s), 6) for s in scores],
        })
    return series


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build(version, seed, hidden, epochs, threshold, devices, length):
    rng = np.random.default_rng(seed)
    x, y = make_dataset(devices, length, 0.05, rng)
    weights, biases = train(x, y, hidden, epochs, seed)
    xe, ye = make_dataset(4, 600, 0.05, np.random.default_rng(seed + 1000))
    pe = score(xe, weights, biases)[:, 0] >= threshold
    tp = int(np.sum(pe & (ye > 0.5))); fp = int(np.sum(pe & (ye < 0.5))); fn = int(np.sum(~pe & (ye > 0.5)))
    precision = tp / max(tp + fp, 1); recall = tp / max(tp + fn, 1)

    samples = reference_samples(weights, biases, threshold, np.random.default_rng(seed + 2000))
    for s in samples:
        for i, sc in enumerate(s["scores"]):
            if i < WINDOW:
                continue  # the window is still filling; the tests judge readings with a full window
            anomalous = i in s["anomalyIndices"]
            if anomalous != (sc >= threshold):
                sys.exit(f"v{version}: reference sample {s['kind']}[{i}] scores {sc:.3f} (anomaly={anomalous}); retrain")

    out = os.path.join(ROOT, "models", "anomaly", f"v{version.split('.')[0]}")
    os.makedirs(out, exist_ok=True)
    model = to_onnx(weights, biases, "cloudedge_anomaly", version)
    path = os.path.join(out, "anomaly.onnx")
    onnx.save(model, path)
    manifest = {
        "name": "cloudedge-anomaly",
        "version": version,
        "file": "anomaly.onnx",
        "sha256": sha256(path),
        "format": {"opset": 13, "irVersion": 8},
        "input": {"name": "features", "elementType": "float32", "shape": ["N", FEATURE_COUNT]},
        "output": {"name": "score", "elementType": "float32", "shape": ["N", 1]},
        "threshold": threshold,
        "features": {
            "count": FEATURE_COUNT,
            "window": WINDOW,
            "clip": CLIP,
            "kinds": KINDS,
            "units": UNIT,
            "center": CENTER,
            "scale": SCALE,
            "minStd": MIN_STD,
            "std": "population (divide by the count)",
            "layout": FEATURES,
        },
        "training": {
            "script": "tools/models/train_anomaly.py",
            "seed": seed, "hidden": list(hidden), "epochs": epochs,
            "samples": int(len(x)), "anomalyRate": 0.05,
            "evaluation": {"samples": int(len(xe)), "precision": round(precision, 4), "recall": round(recall, 4)},
        },
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump({"threshold": threshold, "series": samples}, f, separators=(",", ":"))
        f.write("\n")
    print(f"v{version}: {os.path.getsize(path)} bytes, precision {precision:.3f}, recall {recall:.3f}, sha256 {manifest['sha256']}")


if __name__ == "__main__":
    build("1.0.0", seed=11, hidden=(16, 8), epochs=12, threshold=0.5, devices=24, length=800)
    build("2.0.0", seed=23, hidden=(24, 12), epochs=16, threshold=0.6, devices=32, length=800)
