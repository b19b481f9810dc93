"""Everything at once: :func:`inspect_checkpoint` (``python -m minivit inspect CHECKPOINT --out DIR``)
runs the four analyses on a checkpoint and writes their PNGs and one ``inspect.npz``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minivit.backend import to_numpy
from minivit.inspect.attention import attention_weights
from minivit.inspect.distance import mean_attention_distance, plot_attention_distance
from minivit.inspect.filters import embedding_filters, plot_embedding_filters
from minivit.inspect.maps import attention_rollout, last_layer_attention, plot_attention_maps
from minivit.inspect.positions import plot_position_similarity, position_similarity


def inspect_checkpoint(checkpoint, out, data_dir=None, num_images: int = 8, device=None, dataset_obj=None,
                       dataset: str | None = None, distance_images: int = 128, batch_size: int = 32):
    """Run the four analyses on a checkpoint and write PNGs into ``out``.

    checkpoint: a minivit checkpoint or an official ViT ``.npz`` (see ``minivit.pretrained``).
    Test images (CIFAR, or ``dataset_obj``) are normalized as the checkpoint expects and resized
    to its resolution when it differs. The attention distance averages over ``distance_images``
    images; the attention maps show the first ``num_images``.
    returns: dict of the written paths and the arrays behind them.
    """
    from minivit.data.augment import normalize
    from minivit.backend import get_xp
    from minivit.interpolate import resize_bilinear
    from minivit.pretrained import load_model

    xp = get_xp(device)
    model, info = load_model(checkpoint, xp=xp)
    c = model.config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {}

    comps, explained = embedding_filters(model)
    result["embedding_filters"] = dict(components=to_numpy(comps), explained=to_numpy(explained))
    result["filters_png"] = plot_embedding_filters(comps, out / "embedding_filters.png", explained)

    if c.pos_embed != "none":
        sim = position_similarity(model)
        result["position_similarity"] = to_numpy(sim)
        result["position_png"] = plot_position_similarity(sim, out / "position_similarity.png",
                                                          title=f"Position embedding similarity ({c.pos_embed})")

    if dataset_obj is None:
        from minivit.data.cifar import load_cifar

        dataset_obj = load_cifar(dataset or info.get("dataset") or "cifar10", data_dir)
    n = max(num_images, distance_images)
    raw = dataset_obj.x_test[:n]
    x = normalize(xp.asarray(raw), info["mean"], info["std"]).astype(model.dtype)
    if x.shape[1] != c.image_size or x.shape[2] != c.image_size:
        x = resize_bilinear(x, c.image_size, c.image_size)
    cls = c.pool == "cls"
    # Chunk by chunk, so that only one chunk's attention weights (L x (b, h, T, T)) is in memory.
    m = min(distance_images, len(x))
    dist = 0.0
    for i in range(0, m, batch_size):
        chunk = x[i:min(i + batch_size, m)]
        dist = dist + mean_attention_distance(attention_weights(model, chunk, batch_size), c.patch_size,
                                              cls_token=cls) * (len(chunk) / m)
    result["attention_distance"] = dist
    result["distance_png"] = plot_attention_distance(dist, out / "attention_distance.png", image_size=c.image_size)

    k = min(num_images, len(raw))
    few = attention_weights(model, x[:k], batch_size)
    maps = {"last layer": last_layer_attention(few, cls), "rollout": attention_rollout(few, cls)}
    result["attention_maps"] = {name: to_numpy(m) for name, m in maps.items()}
    preds = to_numpy(xp.argmax(_logits(model, x[:k]), axis=1))
    classes = list(getattr(dataset_obj, "classes", []))
    labels = None
    if classes and model.config.num_classes == len(classes):
        labels = [f"{classes[int(t)]} -> {classes[int(p)]}" for t, p in zip(dataset_obj.y_test[:k], preds)]
    result["maps_png"] = plot_attention_maps(raw[:k], maps, out / "attention_maps.png", labels=labels,
                                             title="class-token attention: last layer and rollout")
    np.savez(out / "inspect.npz", attention_distance=dist, filters=result["embedding_filters"]["components"],
             explained=result["embedding_filters"]["explained"],
             **({"position_similarity": result["position_similarity"]} if "position_similarity" in result else {}),
             last_layer=result["attention_maps"]["last layer"], rollout=result["attention_maps"]["rollout"])
    result["npz"] = out / "inspect.npz"
    return result


def _logits(model, x):
    was = model.training
    model.eval()
    try:
        return model.forward(x)
    finally:
        model.train(was)
