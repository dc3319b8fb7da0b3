"""InfoGAN (Chen et al. 2016): latent codes G must keep recoverable, learned without labels.

G reads noise z and codes c: categorical codes (one-hot) and continuous ones (uniform in [-r, r] while
training). A Q head sharing D's body estimates the codes from G's samples; D and G both minimise the
adversarial loss plus lambda * L_I, the negative variational lower bound of the mutual information I(c; G(z, c))
(ganforge.aux_losses): cross-entropy for each categorical code, and for each continuous code the negative
log-likelihood under Q's factored Gaussian (the paper's choice, `continuous_loss: gaussian`; `mse` fixes the
std). The paper's weights: lambda = 1 for categorical codes, smaller for continuous ones.

Codes are named c0, c1, ...: the categorical ones first, then the continuous ones. G's latent vector is
[z | one column per categorical code holding its index | the continuous codes], so `sample_latent` draws
codes with the noise and `ganforge generate --code c0=3 --sweep c1=-2:2:8` only overwrites columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.aux_losses import class_loss, gaussian_code_nll, mse_code_loss
from ganforge.errors import ConfigError, GanforgeError
from ganforge.models.auxiliary import AuxiliaryFamily
from ganforge.models.base import FAMILIES, DataSpec
from ganforge.models.cgan import ConditionalDiscriminator, ConditionalGenerator, check_widths
from ganforge.models.dcgan import DCGANConfig
from ganforge.models.sampler import CodeSpec, NoiseSampler

LOG_STD_LIMIT = 4.0  # Q's Gaussian log-std is clamped to +-this: an exact guess must not drive the NLL to -inf


@dataclass
class InfoGANConfig(DCGANConfig):
    family: str = "infogan"  # DCGAN with latent codes and a Q head (unsupervised)
    latent_dim: int = 62  # incompressible noise z ~ N(0, I) (the paper's 62 for MNIST); the codes come on top
    categorical_codes: list[int] = field(default_factory=lambda: [10])  # sizes of the categorical codes (MNIST:
    # one code of 10 values); named c0, c1, ...
    continuous_codes: int = 2  # how many continuous codes follow them (named after the categorical ones)
    continuous_range: float = 1.0  # training draws continuous codes uniform in [-range, range] (the paper: 1)
    info_weight_categorical: float = 1.0  # lambda of the categorical codes' MI term (the paper: 1)
    info_weight_continuous: float = 0.1  # lambda of the continuous codes' MI term (the paper: "smaller", so the
    # differential entropy's scale does not swamp the GAN loss)
    continuous_loss: str = "gaussian"  # "gaussian": Q predicts mean and log-std, NLL (the paper); "mse": mean only
    g_hidden: int = 1024  # fully connected layer (batch norm, ReLU) before G's projection (the paper: 1024); 0: none
    d_hidden: int = 1024  # fully connected layer (batch norm, LeakyReLU) after D's convs, shared with Q (the paper:
    # 1024); 0: none
    q_hidden: int = 128  # Q head: Linear -> batch norm -> LeakyReLU of this width, then the code outputs (the
    # paper: 128); 0: a linear head

    def validate(self) -> None:
        super().validate()
        if self.conditional:
            raise ConfigError("model.family infogan learns without labels: model.conditional must be false "
                              "(use cgan or acgan for class labels)")
        if any(size < 2 for size in self.categorical_codes):
            raise ConfigError(f"model.categorical_codes sizes must be >= 2, got {self.categorical_codes}")
        if self.continuous_codes < 0:
            raise ConfigError(f"model.continuous_codes must be >= 0, got {self.continuous_codes}")
        if not self.categorical_codes and not self.continuous_codes:
            raise ConfigError("infogan needs at least one code: set model.categorical_codes or continuous_codes")
        if not self.continuous_range > 0:
            raise ConfigError(f"model.continuous_range must be > 0, got {self.continuous_range}")
        for name in ("info_weight_categorical", "info_weight_continuous"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        if self.continuous_loss not in ("gaussian", "mse"):
            raise ConfigError(f"model.continuous_loss must be gaussian or mse, got {self.continuous_loss!r}")
        check_widths(self, (), ("g_hidden", "d_hidden", "q_hidden"))


class InfoGANGenerator(ConditionalGenerator):
    """[z | categorical indices | continuous codes] (B, latent_dim) -> images; indices are one-hot inside."""

    def __init__(self, *, config: InfoGANConfig, spec: DataSpec) -> None:
        sizes = list(config.categorical_codes)
        n_cont = config.continuous_codes
        super().__init__(config=config, spec=spec, num_classes=0, hidden=config.g_hidden,
                         in_features=config.latent_dim + sum(sizes) + n_cont)
        self.noise_dim = config.latent_dim
        self.categorical_sizes = sizes
        self.continuous_codes = n_cont
        self.continuous_range = config.continuous_range
        self.latent_dim = self.noise_dim + len(sizes) + n_cont  # what sample_latent draws and forward reads

    def code_specs(self) -> dict[str, CodeSpec]:
        specs = [CodeSpec(f"c{i}", "categorical", size=size) for i, size in enumerate(self.categorical_sizes)]
        r = self.continuous_range
        specs += [CodeSpec(f"c{len(specs) + j}", "continuous", low=-2.0 * r, high=2.0 * r)
                  for j in range(self.continuous_codes)]
        return {spec.name: spec for spec in specs}

    def sample_latent(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.noise_dim, generator=generator)
        cats = [torch.randint(size, (n, 1), generator=generator).float() for size in self.categorical_sizes]
        cont = (torch.rand(n, self.continuous_codes, generator=generator) * 2 - 1) * self.continuous_range
        return torch.cat([z, *cats, cont], dim=1).to(device)  # (n, latent_dim)

    def split(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """latent (B, latent_dim) -> noise (B, noise_dim), categorical indices (B, n_cat) long, continuous (B, M)."""
        n_cat = len(self.categorical_sizes)
        noise = latent[:, : self.noise_dim]
        cats = latent[:, self.noise_dim : self.noise_dim + n_cat].round().long()
        return noise, cats, latent[:, self.noise_dim + n_cat :]

    def inputs(self, z: Tensor, labels: Tensor | None) -> Tensor:
        noise, cats, cont = self.split(z)
        one_hots = [F.one_hot(cats[:, i].clamp(0, size - 1), size).to(z.dtype)
                    for i, size in enumerate(self.categorical_sizes)]
        return torch.cat([noise, *one_hots, cont], dim=1)  # (B, in_features)

    def with_codes(self, latent: Tensor, codes: dict[str, Tensor | float | int]) -> Tensor:
        """A copy of latent with the named codes set: each a number or a tensor (B,); errors name bad input."""
        specs = self.code_specs()
        out = latent.clone()
        for name, value in codes.items():
            if name not in specs:
                known = ", ".join(f"{s.name} ({s.kind}{f', {s.size} values' if s.kind == 'categorical' else ''})"
                                  for s in specs.values())
                raise GanforgeError(f"this model has no code {name!r}; its codes: {known}")
            spec = specs[name]
            column = self.noise_dim + list(specs).index(name)
            values = torch.as_tensor(value, dtype=torch.float32).to(latent.device)
            if values.ndim > 1 or (values.ndim == 1 and len(values) != len(latent)):
                raise GanforgeError(f"code {name}: give a number or one value per sample ({len(latent)}), got "
                                    f"shape {tuple(values.shape)}")
            if not torch.isfinite(values).all():
                raise GanforgeError(f"code {name}: values must be finite")
            if spec.kind == "categorical":
                if (values != values.round()).any() or (values < 0).any() or (values >= spec.size).any():
                    raise GanforgeError(f"code {name} is categorical: whole numbers 0..{spec.size - 1}, got "
                                        f"{_show(values)}")
            out[:, column] = values.to(out.dtype)
        return out


def _show(values: Tensor) -> str:
    flat = values.flatten().tolist()
    return ", ".join(f"{v:g}" for v in flat[:4]) + (", ..." if len(flat) > 4 else "")


class InfoGANSampler(NoiseSampler):
    """A NoiseSampler whose latent codes can be set: forward(z, codes={"c0": 3, "c1": tensor (B,)})."""

    @property
    def codes(self) -> dict[str, CodeSpec]:
        return self.G.code_specs()

    def forward(self, z: Tensor, labels: Tensor | None = None, codes: dict | None = None, **controls) -> Tensor:
        if codes:
            z = self.G.with_codes(z, codes)
        return super().forward(z, labels, **controls)

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        inputs = super().example_inputs(n, generator=generator, data=data)
        if self.G.categorical_sizes:  # sample grids show every value of c0 in turn
            inputs["z"] = self.G.with_codes(inputs["z"], {"c0": torch.arange(n) % self.G.categorical_sizes[0]})
        return inputs


class InfoGANFamily(AuxiliaryFamily):
    """D and G both minimise the adversarial loss plus the weighted MI terms on the fakes' codes."""

    def info_loss(self, model: InfoGANConfig, q_out: Tensor, latent: Tensor, report) -> Tensor:
        sizes, n_cont = list(model.categorical_codes), model.continuous_codes
        n_cat = len(sizes)
        codes = latent[:, model.latent_dim :]  # (B, n_cat + n_cont): the columns after the noise
        total = q_out.new_zeros(())
        logits = q_out[:, : sum(sizes)].split(sizes, dim=1) if sizes else ()
        if sizes:
            cat_loss = sum(class_loss(lg, codes[:, i].round().long()) for i, lg in enumerate(logits))
            report("info_categorical", cat_loss)
            report("q_acc_c0", (logits[0].detach().argmax(1) == codes[:, 0].round().long()).float())
            total = total + model.info_weight_categorical * cat_loss
        if n_cont:
            value = codes[:, n_cat:]
            rest = q_out[:, sum(sizes):]
            if model.continuous_loss == "gaussian":
                mean, log_std = rest[:, :n_cont], rest[:, n_cont:].clamp(-LOG_STD_LIMIT, LOG_STD_LIMIT)
                cont_loss = gaussian_code_nll(mean, log_std, value)
            else:
                cont_loss = mse_code_loss(rest, value)
            report("info_continuous", cont_loss)
            total = total + model.info_weight_continuous * cont_loss
        return total

    def d_aux_loss(self, model: InfoGANConfig, real_aux: Tensor, real_labels: Tensor | None, fake_aux: Tensor,
                   z: Tensor, fake_labels: Tensor | None, report) -> Tensor:
        return self.info_loss(model, fake_aux, z, report)  # Q learns from fakes only: their codes are known

    def g_aux_loss(self, model: InfoGANConfig, fake_aux: Tensor, z: Tensor, fake_labels: Tensor | None,
                   report) -> Tensor:
        return self.info_loss(model, fake_aux, z, lambda name, value: None)


def q_outputs(model: InfoGANConfig) -> int:
    """Width of the Q head: logits for each categorical code, then a mean (and a log-std) per continuous one."""
    per_continuous = 2 if model.continuous_loss == "gaussian" else 1
    return sum(model.categorical_codes) + per_continuous * model.continuous_codes


def infogan_discriminator(cfg: InfoGANConfig, spec: DataSpec) -> ConditionalDiscriminator:
    return ConditionalDiscriminator(config=cfg, spec=spec, num_classes=0, condition="none", hidden=cfg.d_hidden,
                                    aux_outputs=q_outputs(cfg), aux_hidden=cfg.q_hidden)


_family = InfoGANFamily(
    name="infogan",
    config_class=InfoGANConfig,
    generator=lambda cfg, spec: InfoGANGenerator(config=cfg, spec=spec),
    discriminator=infogan_discriminator,
    description="InfoGAN (Chen et al.): categorical and continuous latent codes, a Q head sharing D's body",
)
_family.sampler = InfoGANSampler
FAMILIES.register("infogan")(_family)
