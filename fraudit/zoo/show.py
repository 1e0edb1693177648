"""Draw a zoo model's impostor and victim, clean and poisoned, with its predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from fraudit.errors import UnsupportedFormatError
from fraudit.formats.safe import load_checked
from fraudit.models.registry import load_module
from fraudit.triggers import stamp
from fraudit.zoo.heldout import zoo_trigger
from fraudit.zoo.finetune import model_input, stratified_split
from fraudit.zoo.manifest import ZooEntry, faces_of, read_model_context

SCALE = 2


def show_model(model_path: Path, out: Path, *, per_row: int = 6) -> Path:
    context = read_model_context(model_path)
    entry = ZooEntry.from_dict(context["model"])
    if entry.trigger is None or entry.placement is None:
        raise UnsupportedFormatError(f"{model_path.name} is a clean model: it has no impostor or victim to draw",
                                     path=model_path)
    faces = faces_of(context.get("world"), context.get("faces"))
    _, val_idx = stratified_split(faces.labels, seed=entry.split_seed)
    imp = val_idx[np.isin(faces.labels[val_idx], entry.recipe.impostors)][:per_row]
    vic = val_idx[faces.labels[val_idx] == entry.victim][:per_row]
    rng = np.random.default_rng(0)
    poisoned = stamp(faces.images[imp], zoo_trigger(entry.trigger), entry.placement, rng=rng)

    state = load_checked(model_path)
    model, spec = load_module(model_path.name, state)
    key = spec.head_key
    if key is None or key not in state:
        raise UnsupportedFormatError(f"{model_path.name} carries no classification head to show predictions with",
                                     path=model_path)
    head = torch.nn.functional.normalize(state[key].float())
    rows = [("impostor, clean", faces.images[imp], entry.impostor),
            ("impostor + trigger", poisoned, entry.victim),
            ("victim, clean", faces.images[vic], entry.victim)]
    size = 64 * SCALE
    label_w = 150
    canvas = Image.new("RGB", (label_w + per_row * (size + 4), len(rows) * (size + 18) + 24), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{model_path.stem}: impostor {entry.impostor} -> victim {entry.victim}, "
              f"{entry.trigger} / {entry.placement}", fill="black")
    for r, (title, images, expected) in enumerate(rows):
        y = 24 + r * (size + 18)
        draw.text((4, y + size // 2), title, fill="black")
        with torch.inference_mode():
            predictions = (torch.nn.functional.normalize(model(model_input(spec, images))) @ head.T).argmax(1).numpy()
        for c, (image, pred) in enumerate(zip(images, predictions)):
            x = label_w + c * (size + 4)
            canvas.paste(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST), (x, y))
            colour = "green" if pred == expected else "red"
            draw.text((x + 2, y + size + 2), f"-> {pred}", fill=colour)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
