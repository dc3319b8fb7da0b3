"""Seed 001's Keras/TensorFlow DCGAN, as its text intends, timed for bench_train.py.

Runs in the benchmark's own virtual environment (benchmarks/.venv-tf, with tensorflow-cpu; never a ganforge
dependency): bench_train.py creates it and calls

    benchmarks/.venv-tf/bin/python benchmarks/keras_seed001.py --data-root ../shared/data --steps 30

which prints one JSON line: images/s, seconds, peak RSS. The model, losses, optimizers and train step are the
seed's code; two fixes make it run as the seed describes: the dataset is batched (the seed shuffles but never
batches, so every "batch" would be one unbatched image and `train_step` would fail on the shapes), and
`train_step` is a `tf.function` (graph mode: the fast way Keras code is run; the seed calls it eagerly).
MNIST comes from the IDX files beside the repository instead of `mnist.load_data()` (no internet here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras.layers import (  # noqa: E402
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Flatten,
    LeakyReLU,
    Reshape,
)

BUFFER_SIZE = 60000
BATCH_SIZE = 256
NOISE_DIM = 100


# ------------------------------------------------------------------------- the seed's code (unchanged)


def make_generator_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(NOISE_DIM,)))  # the seed passes input_shape= to Dense (same model)
    model.add(Dense(7 * 7 * 256, activation="relu"))
    model.add(Reshape((7, 7, 256)))
    model.add(Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", activation="relu"))
    model.add(BatchNormalization())
    model.add(Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", activation="relu"))
    model.add(BatchNormalization())
    model.add(Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", activation="tanh"))
    return model


def make_discriminator_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=[28, 28, 1]))
    model.add(Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(LeakyReLU())
    model.add(BatchNormalization())
    model.add(Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(LeakyReLU())
    model.add(BatchNormalization())
    model.add(Flatten())
    model.add(Dense(1))
    return model


cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)


def discriminator_loss(real_output, fake_output):
    real_loss = cross_entropy(tf.ones_like(real_output), real_output)
    fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
    return real_loss + fake_loss


def generator_loss(fake_output):
    return cross_entropy(tf.ones_like(fake_output), fake_output)


def build():
    generator = make_generator_model()
    discriminator = make_discriminator_model()
    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)

    @tf.function  # fix: graph mode (the seed runs it eagerly)
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
        return gen_loss, disc_loss

    return train_step, generator


# ---------------------------------------------------------------------------------------- data, timing


def load_mnist_images(root: Path) -> np.ndarray:
    """train-images-idx3-ubyte from torchvision's layout (ROOT/MNIST/raw), as the seed's (60000, 28, 28, 1)."""
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw = path.read_bytes()
    n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w, 1).astype("float32")
    return (images - 127.5) / 127.5  # the seed's normalization to [-1, 1]


def run_for_cpu(args, train_step, generator, batches) -> None:
    """Train until args.cpu_seconds of process CPU time (sampling excluded), snapshotting samples on the way.

    The snapshots' noise is fixed (seeded) and drawn apart from training; each is saved as uint8 (N, 1, 28, 28)
    under the key "cpu_<training CPU seconds>_step_<steps>", for time_to_quality.py to score.
    """
    noise = tf.random.stateless_normal([args.snapshot_num, NOISE_DIM], seed=[7, 0])
    snapshots: dict[str, np.ndarray] = {}
    cpu0, sampling, steps, next_snap = time.process_time(), 0.0, 0, args.snapshot_every
    while True:
        losses = train_step(next(batches))
        float(losses[0])
        steps += 1
        cpu = time.process_time() - cpu0 - sampling
        if cpu >= next_snap or cpu >= args.cpu_seconds:
            start = time.process_time()
            images = generator(noise, training=False).numpy()  # (N, 28, 28, 1) in [-1, 1]
            uint8 = np.round((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(0, 3, 1, 2)
            snapshots[f"cpu_{cpu:.1f}_step_{steps}"] = uint8
            sampling += time.process_time() - start
            next_snap += args.snapshot_every
            if cpu >= args.cpu_seconds:
                break
    np.savez_compressed(args.snapshots, **snapshots)
    print(json.dumps({"steps": steps, "train_cpu_s": round(time.process_time() - cpu0 - sampling, 1),
                      "version": f"tensorflow {tf.__version__}, keras {keras.__version__}"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw")
    parser.add_argument("--steps", type=int, default=30, help="timed train steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, kernel setup)")
    parser.add_argument("--samples", type=Path, help="also save 64 samples (training=False, as the seed) to this .npy")
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads; 0: TF's default")
    parser.add_argument("--cpu-seconds", type=float, default=0.0,
                        help="time_to_quality.py: train until this much process CPU time instead of --steps")
    parser.add_argument("--snapshot-every", type=float, default=60.0, help="CPU seconds between snapshots")
    parser.add_argument("--snapshot-num", type=int, default=1000, help="samples per snapshot")
    parser.add_argument("--snapshots", type=Path, help="write the snapshots (uint8, N x 1 x 28 x 28) to this .npz")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    tf.random.set_seed(0)
    train_images = load_mnist_images(args.data_root)
    # fix: the seed shuffles but never batches
    dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(BUFFER_SIZE)
    dataset = dataset.batch(BATCH_SIZE, drop_remainder=True).repeat()
    batches = iter(dataset)
    train_step, generator = build()
    if args.cpu_seconds:
        run_for_cpu(args, train_step, generator, batches)
        return
    for _ in range(args.warmup):
        losses = train_step(next(batches))
    float(losses[0])
    start = time.perf_counter()
    for _ in range(args.steps):
        losses = train_step(next(batches))
    float(losses[0])  # wait for the last step
    seconds = time.perf_counter() - start
    if args.samples is not None:  # (64, 28, 28, 1) in [-1, 1], to compare with ganforge's grid after equal steps
        np.save(args.samples, generator(tf.random.normal([64, NOISE_DIM]), training=False).numpy())
    print(json.dumps({
        "images_per_s": args.steps * BATCH_SIZE / seconds,
        "steps_per_s": args.steps / seconds,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mb": None,
        "version": f"tensorflow {tf.__version__}, keras {keras.__version__}",
    }))


if __name__ == "__main__":
    main()
