"""A labelled synthetic training set from a conditional GAN (the data-augmentation use of GANs).

Train a conditional DCGAN on half of the bundled digits, generate N images of each class, train the same
classifier (3 nearest neighbours) on (a) those real images, (b) the synthetic set alone, (c) both, and score
each on the other half.

    python examples/synthetic_training_set.py                 # ~2,000 GAN steps: a few CPU minutes
    python examples/synthetic_training_set.py --steps 300 --per-class 200
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

import ganforge

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2000, help="GAN training steps")
parser.add_argument("--per-class", type=int, default=300, help="synthetic images per class")
parser.add_argument("--out", default="runs/synthetic-digits")
args = parser.parse_args()

digits = load_digits()  # 1,797 8x8 images, values 0..16
order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(0))
train_idx, test_idx = order[: len(order) // 2], order[len(order) // 2:]

# The GAN sees only the training half, written as an image folder with one subfolder per class (its labels).
folder = Path(args.out + "-data")
for i in train_idx.tolist():
    (folder / str(digits.target[i])).mkdir(parents=True, exist_ok=True)
    Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(folder / str(digits.target[i]) / f"{i}.png")
ganforge.train("default", args.out, steps=args.steps, dataset="folder", data_root=folder, image_size=[32],
               channels=1, overrides=["model.conditional=true", "train.progress=false"], overwrite=True)

labels = torch.arange(10).repeat_interleave(args.per_class)
fake = ganforge.generate(args.out, len(labels), labels=labels, seed=1)  # uint8 (N, 1, 32, 32)
fake_x = F.interpolate(fake.float(), size=(8, 8), mode="area").flatten(1) / 255 * 16  # back to the digits' scale
real_x = torch.as_tensor(digits.data, dtype=torch.float32)
real_y = torch.as_tensor(digits.target)


def accuracy(x, y) -> float:
    model = KNeighborsClassifier(n_neighbors=3).fit(x.numpy(), y.numpy())
    return model.score(real_x[test_idx].numpy(), real_y[test_idx].numpy())


print(f"real only      ({len(train_idx)} images): {accuracy(real_x[train_idx], real_y[train_idx]):.3f}")
print(f"synthetic only ({len(labels)} images): {accuracy(fake_x, labels):.3f}")
both_x, both_y = torch.cat([real_x[train_idx], fake_x]), torch.cat([real_y[train_idx], labels])
print(f"real + synthetic: {accuracy(both_x, both_y):.3f}  (test: the other {len(test_idx)} real images)")
