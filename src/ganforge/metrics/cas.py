"""Classification Accuracy Score / GAN-train (Ravuri & Vinyals 2019; Shmelkov et al. 2018).

A fresh classifier (the domain CNN) is trained on generated samples and their requested classes only, then
scored on the real test set: high when the samples are both correct and diverse enough to learn from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def classification_accuracy_score(
    train_images,
    train_labels,
    test_images,
    test_labels,
    *,
    num_classes: int = 10,
    epochs: float = 2.0,
    seed: int = 0,
    progress: bool = False,
) -> float:
    """Train the domain CNN on (train_images, train_labels) and return its accuracy on the test set.

    Images are uint8 (N, C, H, W), converted as for the domain classifier (grayscale, 28x28).
    """
    from ganforge.metrics.domain import classifier_accuracy, train_classifier

    model = train_classifier(
        train_images,
        train_labels,
        num_classes=num_classes,
        epochs=epochs,
        seed=seed,
        progress=progress,
        desc="CAS classifier",
    )
    return classifier_accuracy(model, test_images, test_labels)


@METRICS.register("cas")
def _cas(ctx: EvalContext) -> dict[str, float]:
    ctx.require_images("CAS")
    requested = ctx.fake_labels()
    test = ctx.real_test_set()
    return {
        "cas": classification_accuracy_score(
            ctx.fake.data,
            requested,
            test.data,
            test.labels,
            num_classes=test.num_classes,
            epochs=ctx.cas_epochs,
            seed=ctx.seed,
            progress=ctx.progress,
        )
    }
