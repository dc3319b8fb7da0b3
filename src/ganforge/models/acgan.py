"""ACGAN (Odena et al. 2017): a class-conditional G and a D with an auxiliary classifier head.

D answers two questions from one body: real or fake (its logit) and which class (a K-way head). D minimises
the adversarial loss plus the class cross-entropy on reals and on fakes (the class they were generated for);
G minimises its adversarial loss plus the class cross-entropy of its fakes, so it draws samples D classifies
as the requested class. D takes no label input by default (the paper's D); `d_condition` may add one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ganforge.aux_losses import acgan_d_class_loss, class_loss
from ganforge.errors import ConfigError
from ganforge.models.auxiliary import AuxiliaryFamily
from ganforge.models.base import FAMILIES, DataSpec
from ganforge.models.cgan import (
    CGANConfig,
    ConditionalDiscriminator,
    check_conditions,
    conditional_discriminator,
    conditional_generator,
)
from ganforge.models.dcgan import DCGANConfig


@dataclass
class ACGANConfig(CGANConfig):
    family: str = "acgan"  # conditional DCGAN with an auxiliary classifier in D
    d_condition: str = "none"  # D's class input besides its classifier head: "none" (the paper), "concat" or
    # "projection"
    class_weight_real: float = 1.0  # weight of D's class loss on real images (the paper: 1)
    class_weight_fake: float = 1.0  # weight of D's class loss on fakes, for their requested class (the paper: 1;
    # 0 trains the classifier on real data only, which avoids rewarding easy-to-classify fakes)
    class_weight_g: float = 1.0  # weight of G's class loss: how much G is paid for fakes D puts in their class

    def validate(self) -> None:
        DCGANConfig.validate(self)
        check_conditions(self, allowed_d=("none", "concat", "projection"))
        if not self.conditional:
            raise ConfigError("model.family acgan is always conditional")
        for name in ("class_weight_real", "class_weight_fake", "class_weight_g"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")


class ACGANFamily(AuxiliaryFamily):
    def d_aux_loss(self, model: ACGANConfig, real_aux: Tensor, real_labels: Tensor | None, fake_aux: Tensor,
                   z: Tensor, fake_labels: Tensor | None, report) -> Tensor:
        report("aux_acc_real", (real_aux.detach().argmax(1) == real_labels).float())
        report("aux_acc_fake", (fake_aux.detach().argmax(1) == fake_labels).float())
        return acgan_d_class_loss(real_aux, real_labels, fake_aux, fake_labels,
                                  real_weight=model.class_weight_real, fake_weight=model.class_weight_fake)

    def g_aux_loss(self, model: ACGANConfig, fake_aux: Tensor, z: Tensor, fake_labels: Tensor | None,
                   report) -> Tensor:
        return model.class_weight_g * class_loss(fake_aux, fake_labels)


def acgan_discriminator(cfg: ACGANConfig, spec: DataSpec) -> ConditionalDiscriminator:
    return conditional_discriminator(cfg, spec, aux_outputs=spec.num_classes)


FAMILIES.register("acgan")(
    ACGANFamily(
        name="acgan",
        config_class=ACGANConfig,
        generator=conditional_generator,
        discriminator=acgan_discriminator,
        description="ACGAN (Odena et al.): conditional G, D with an auxiliary classifier head",
    )
)
