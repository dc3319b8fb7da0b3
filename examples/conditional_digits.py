"""Train a conditional DCGAN on the bundled digits, then write one row of samples per class.

    python examples/conditional_digits.py                 # ~2,000 steps: a few CPU minutes
    python examples/conditional_digits.py --steps 200 --out runs/cond-digits
"""

import argparse

import torch
from torchvision.utils import save_image

import ganforge

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--out", default="runs/conditional-digits")
args = parser.parse_args()

ganforge.train("default", args.out, steps=args.steps, overrides=["model.conditional=true", "train.progress=false"],
               overwrite=True)
per_class = 8
labels = torch.arange(10).repeat_interleave(per_class)  # 0 x 8, 1 x 8, ..., 9 x 8
images = ganforge.generate(args.out, len(labels), labels=labels, seed=0)  # uint8 (80, 1, 32, 32)
save_image(images.float() / 255, f"{args.out}/per-class.png", nrow=per_class)
print(f"wrote {args.out}/per-class.png: one row per digit 0-9")
