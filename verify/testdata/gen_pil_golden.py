#!/usr/bin/env python3
"""Regenerates verify/testdata/pil: Pillow's own resize output and a numpy
replay of the Hugging Face image-processor steps (transformers'
image_transforms.py: get_resize_output_image_size, resize via PIL,
center_crop with zero padding, rescale in float64 then float32, normalize in
float32, flip_channel_order). The Go tests compare against these files, so the
reference is Pillow itself, not a second Go implementation.

Needs Pillow and numpy (Debian: python3-pil python3-numpy; made with Pillow
9.4.0, numpy 1.24.2). Run from the repository root:

    python3 verify/testdata/gen_pil_golden.py ../shared/fixtures/images
"""
import json
import os
import sys

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pil")

FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
# (width, height) targets for the 67x45 source: downscale, upscale, one axis
# only (each way), extreme aspect, 1x1.
SIZES = [(32, 24), (150, 101), (67, 20), (20, 45), (200, 7), (1, 1), (29, 45)]


def resize_source():
    rng = np.random.default_rng(20240611)
    h, w = 45, 67
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), (xx + yy) * 255 / (w + h - 2)], -1)
    noise = rng.integers(-40, 41, size=(h, w, 3))
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    img[10:20, 30:40] = [255, 0, 0]  # hard edges exercise the negative lobes
    img[30:33, :] = 0
    img[:, 5] = 255
    return Image.fromarray(img, "RGB")


def size_dict(v, default_to_square):
    """transformers image_processing_utils.get_size_dict for the forms we use."""
    if isinstance(v, dict):
        return v
    if isinstance(v, int):
        return {"height": v, "width": v} if default_to_square else {"shortest_edge": v}
    return {"height": v[0], "width": v[1]}


def output_size(h, w, size):
    if "shortest_edge" in size:
        s = size["shortest_edge"]
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = s, int(s * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)
    return size["height"], size["width"]


def center_crop(arr, ch, cw):
    h, w = arr.shape[:2]
    top, left = (h - ch) // 2, (w - cw) // 2
    bottom, right = top + ch, left + cw
    if top >= 0 and bottom <= h and left >= 0 and right <= w:
        return arr[top:bottom, left:right]
    nh, nw = max(ch, h), max(cw, w)
    out = np.zeros((nh, nw) + arr.shape[2:], dtype=arr.dtype)
    tp, lp = -(-(nh - h) // 2), -(-(nw - w) // 2)  # ceil
    out[tp:tp + h, lp:lp + w] = arr
    top, bottom, left, right = top + tp, bottom + tp, left + lp, right + lp
    return out[max(0, top):min(nh, bottom), max(0, left):min(nw, right)]


SQUARE_SIZE = {"ViT": True, "DeiT": True, "Beit": True, "Bit": False, "MobileViT": False}


def hf_pipeline(img, cfg):
    cls = (cfg.get("image_processor_type") or cfg.get("feature_extractor_type"))
    cls = cls.replace("ImageProcessor", "").replace("FeatureExtractor", "")
    img = img.convert("RGB")
    arr = np.array(img)
    if cfg.get("do_resize", True):
        size = size_dict(cfg["size"], SQUARE_SIZE[cls])
        h, w = output_size(arr.shape[0], arr.shape[1], size)
        arr = np.array(Image.fromarray(arr).resize((w, h), resample=cfg["resample"]))
    if cfg.get("do_center_crop", False):
        c = size_dict(cfg["crop_size"], True)
        arr = center_crop(arr, c["height"], c["width"])
    x = arr
    if cfg.get("do_rescale", True):
        x = (x.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", cls != "MobileViT"):
        x = x.astype(np.float32) if x.dtype != np.float32 else x
        mean = np.array(cfg["image_mean"], dtype=np.float32)
        std = np.array(cfg["image_std"], dtype=np.float32)
        x = (x - mean) / std
    if cfg.get("do_flip_channel_order", False):
        x = x[..., ::-1]
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(2, 0, 1))


IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CONFIGS = {
    "vit": {"image_processor_type": "ViTImageProcessor", "do_resize": True,
            "size": {"height": 24, "width": 24}, "resample": 2, "do_rescale": True,
            "rescale_factor": 0.00392156862745098, "do_normalize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    "deit": {"feature_extractor_type": "DeiTFeatureExtractor", "do_resize": True, "size": 28,
             "resample": 3, "do_center_crop": True, "crop_size": 24, "do_normalize": True,
             "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD},
    "dinov2": {"image_processor_type": "BitImageProcessor", "do_convert_rgb": True, "do_resize": True,
               "size": {"shortest_edge": 27}, "resample": 3, "do_center_crop": True,
               "crop_size": {"height": 24, "width": 24}, "do_rescale": True,
               "rescale_factor": 0.00392156862745098, "do_normalize": True,
               "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD},
    "mobilevit": {"feature_extractor_type": "MobileViTFeatureExtractor", "do_resize": True, "size": 26,
                  "resample": 2, "do_center_crop": True, "crop_size": 24,
                  "do_flip_channel_order": True},
    "beit-pad": {"image_processor_type": "BeitImageProcessor", "do_resize": True,
                 "size": {"height": 20, "width": 21}, "resample": 3, "do_center_crop": True,
                 "crop_size": {"height": 24, "width": 25}, "do_rescale": True,
                 "rescale_factor": 0.00392156862745098, "do_normalize": True,
                 "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    "vit-lanczos-norescale": {"image_processor_type": "ViTImageProcessor", "do_resize": True,
                              "size": {"height": 24, "width": 24}, "resample": 1,
                              "do_rescale": False, "do_normalize": True,
                              "image_mean": [120.0, 110.0, 100.0], "image_std": [60.0, 55.0, 50.0]},
}
IMAGES = ["chelsea.png", "coffee.png", "astronaut.png", "horse.png", "camera.png",
          "palette_color.png", "rocket.jpg"]


def main():
    fixtures = sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures/images"
    os.makedirs(OUT, exist_ok=True)
    src = resize_source()
    src.save(os.path.join(OUT, "resize_src.png"))
    for name, code in FILTERS.items():
        for w, h in SIZES:
            src.resize((w, h), resample=code).save(os.path.join(OUT, f"resize_{name}_{w}x{h}.png"))
    for cname, cfg in CONFIGS.items():
        d = os.path.join(OUT, "config", cname)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        for iname in IMAGES:
            with Image.open(os.path.join(fixtures, iname)) as im:
                x = hf_pipeline(im, cfg)
            stem = os.path.splitext(iname)[0]
            x.astype("<f4").tofile(os.path.join(d, f"{stem}.f32"))
            with open(os.path.join(d, f"{stem}.shape"), "w") as f:
                f.write(" ".join(str(s) for s in x.shape) + "\n")


if __name__ == "__main__":
    main()
