"""`accuracy` (result key test_accuracy): a classifier's accuracy, not a score of generated samples.

A semi-supervised GAN's D is a classifier; the trainer logs its test-split accuracy at `eval.every` (see
ganforge.train.evaluation) and `ganforge classify` scores it on any labelled set. Generated samples carry no
true labels, so `evaluate` refuses this name with a pointer to those two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError
from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


@METRICS.register("accuracy")
def _accuracy(ctx: EvalContext) -> dict[str, float]:
    raise GanforgeError("the accuracy metric scores a classifier (model.family ssgan), not generated samples: "
                        "use `ganforge classify RUN --data mnist:test`, or eval.metrics=[accuracy] in training")
