"""Semi-supervised GAN (Salimans et al. 2016, "Improved Techniques for Training GANs", sec. 5).

D is a classifier over the K classes with an implicit "fake" class: its K logits l_k give the class
posterior softmax(l) and, with Z = sum_k exp(l_k), the probability that x is real D(x) = Z / (Z + 1). So the
"realness" logit is logsumexp(l) and the unsupervised GAN loss is the usual one on it. D minimises

    supervised CE on a labelled batch  +  unsupervised_weight * 0.5 * loss.d(LSE(l(x_unl)), LSE(l(G(z))))

(with the default nonsaturating loss the second term is -0.5 E log D(x) - 0.5 E log(1 - D(G(z))), the paper's
L_unsupervised); G minimises feature matching, the squared distance between the batch means of an
intermediate D layer on real and on generated images.

Architecture (the paper's MNIST one, the known-good setting for 100 labels): G is an MLP 100 -> 500 -> 500 ->
784 with softplus and batch norm, the output layer weight-normalised; D is an MLP 1000-500-250-250-250 -> K,
weight-normalised (the hidden layers' scales fixed at their data-dependent init, as the paper's code), with
Gaussian noise (std 0.3 on the input in [0, 1] units, 0.6 in ganforge's [-1, 1]; 0.5 after every hidden layer) doing the
regularising that a 100-label training set needs. Widths are config fields, so tests run tiny versions.

The labelled subset: `labels_per_class` examples of every class, chosen from the training data by a seeded
permutation per class (`labels_seed`, default train.seed). It is kept in the run's checkpoints (family state
"labelled": indices, images, labels), so a run records exactly which labels it saw; `labelled_indices(run)`
reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Family, Generator, ModelConfig, prod
from ganforge.models.sampler import ClassifierSampler
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, report_d_outputs


@dataclass
class SSGANConfig(ModelConfig):
    family: str = "ssgan"  # semi-supervised GAN: D classifies K classes + fake (Salimans et al. 2016)
    latent_dim: int = 100  # size of z (the paper's MNIST G: 100)
    labels_per_class: int = 10  # labelled training examples of each class (10 x 10 classes = MNIST's 100 labels)
    labels_seed: int | None = None  # seed of the labelled subset; None: train.seed (so a seed is one label draw)
    labelled_batch_size: int | None = None  # labelled examples per D step; None: train.batch_size
    g_hidden: list[int] = field(default_factory=lambda: [500, 500])  # G's hidden widths (softplus + batch norm)
    d_hidden: list[int] = field(default_factory=lambda: [1000, 500, 250, 250, 250])  # D's hidden widths (ReLU)
    d_input_noise: float = 0.6  # std of the noise on D's input while training ([-1, 1]: the paper's 0.3 on [0, 1])
    d_hidden_noise: float = 0.5  # std of the Gaussian noise after each D hidden layer while training
    unsupervised_weight: float = 1.0  # weight of the unsupervised (real vs fake) term in D's loss
    feature_layer: int = -1  # D hidden layer whose batch mean G matches (index into d_hidden; -1: the last)

    def validate(self) -> None:
        super().validate()
        if self.labels_per_class < 1:
            raise ConfigError(f"model.labels_per_class must be >= 1, got {self.labels_per_class}")
        if self.labelled_batch_size is not None and self.labelled_batch_size < 1:
            raise ConfigError(f"model.labelled_batch_size must be >= 1, got {self.labelled_batch_size}")
        if self.labels_seed is not None and not 0 <= self.labels_seed < 2**32:
            raise ConfigError(f"model.labels_seed must be in [0, 2**32), got {self.labels_seed}")
        for name in ("g_hidden", "d_hidden"):
            widths = getattr(self, name)
            if not widths or any(w <= 0 for w in widths):
                raise ConfigError(f"model.{name} must be a non-empty list of positive widths, got {widths}")
        if self.d_input_noise < 0 or self.d_hidden_noise < 0 or self.unsupervised_weight < 0:
            raise ConfigError("model.d_input_noise, d_hidden_noise and unsupervised_weight must be >= 0")
        if not -len(self.d_hidden) <= self.feature_layer < len(self.d_hidden):
            raise ConfigError(f"model.feature_layer must index d_hidden ({len(self.d_hidden)} layers), "
                              f"got {self.feature_layer}")
        unsupported = [name for name in ("conditional", "d_spectral_norm", "g_spectral_norm",
                                         "d_minibatch_discrimination", "d_mbstd") if getattr(self, name)]
        if self.d_pack != 1:
            unsupported.append("d_pack")
        if unsupported:
            raise ConfigError(f"model.family ssgan does not support model.{', model.'.join(unsupported)}")


# ---------------------------------------------------------------------------------------------- losses


def realness_logit(class_logits: Tensor) -> Tensor:
    """(B, K) class logits -> (B,) logit of D(x) = Z / (Z + 1), Z = sum_k exp(l_k): logsumexp over classes."""
    return torch.logsumexp(class_logits, dim=1)


def supervised_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the K-class softmax on labelled examples (the "fake" class has logit 0 and cancels)."""
    return F.cross_entropy(class_logits, labels)


def unsupervised_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The paper's L_unsupervised on (B, K) class logits: -0.5 E log D(x) - 0.5 E log(1 - D(G(z))).

    log D(x) = LSE - softplus(LSE) and log(1 - D) = -softplus(LSE), written without exp overflow.
    """
    real, fake = realness_logit(real_logits), realness_logit(fake_logits)
    return 0.5 * (F.softplus(real) - real).mean() + 0.5 * F.softplus(fake).mean()


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Mean over features of the squared difference of the batch means (B, F), (B', F) -> scalar."""
    return (real_features.mean(0) - fake_features.mean(0)).square().mean()


# ---------------------------------------------------------------------------------------------- networks


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise while training (D's regulariser in the paper); the identity in eval mode."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class WeightNormLinear(nn.Module):
    """y = x v^T * (g / ||v||) + b (Salimans & Kingma 2016), one g per output unit.

    With `train_scale` False, g is a buffer: set once by the data-dependent init and then fixed, as in the
    paper's MNIST D (only its last layer trains g). That caps how far D can scale its features up, which keeps
    feature matching and the noise layers meaningful.
    """

    def __init__(self, in_features: int, out_features: int, *, train_scale: bool) -> None:
        super().__init__()
        self.direction = nn.Parameter(torch.randn(out_features, in_features) * 0.05)  # v
        self.bias = nn.Parameter(torch.zeros(out_features))  # b
        scale = torch.ones(out_features)  # g
        if train_scale:
            self.scale = nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.direction * (self.scale / self.direction.norm(dim=1))[:, None]
        return F.linear(x, weight, self.bias)


class SSGANGenerator(Generator):
    """z (B, latent_dim) -> images (B, C, H, W) in [-1, 1]: softplus + batch-norm MLP, weight-normed output."""

    def __init__(self, *, config: SSGANConfig, spec: DataSpec) -> None:
        super().__init__(config=config, spec=spec)
        layers: list[nn.Module] = []
        width = config.latent_dim
        for hidden in config.g_hidden:
            layers += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.Softplus()]
            width = hidden
        layers += [WeightNormLinear(width, prod(spec.shape), train_scale=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z).view(z.shape[0], *self.spec.shape)


class SSGANDiscriminator(nn.Module):
    """Images (B, *shape) -> class logits (B, K); `features(x)` -> the feature layer's output (B, F)."""

    def __init__(self, *, config: SSGANConfig, spec: DataSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.input_noise = GaussianNoise(config.d_input_noise)
        self.linears = nn.ModuleList()
        self.noises = nn.ModuleList()
        width = prod(spec.shape)
        for hidden in config.d_hidden:
            self.linears.append(WeightNormLinear(width, hidden, train_scale=False))
            self.noises.append(GaussianNoise(config.d_hidden_noise))
            width = hidden
        self.head = WeightNormLinear(width, spec.num_classes, train_scale=True)
        self.feature_index = config.feature_layer % len(self.linears)

    def features(self, x: Tensor) -> Tensor:
        """Hidden layer `feature_layer` after its ReLU, before its noise (B, d_hidden[feature_layer]): what G's
        feature matching compares (the paper's choice: the last hidden layer)."""
        h = self.input_noise(x.flatten(1))
        for i in range(self.feature_index):
            h = self.noises[i](F.relu(self.linears[i](h)))
        return F.relu(self.linears[self.feature_index](h))

    def forward(self, x: Tensor) -> Tensor:
        h = self.input_noise(x.flatten(1))  # (B, C*H*W)
        for linear, noise in zip(self.linears, self.noises):
            h = noise(F.relu(linear(h)))
        return self.head(h)  # (B, K)

    @torch.no_grad()
    def initialise_from_data(self, x: Tensor) -> None:
        """Data-dependent init of the weight-normed layers (Salimans & Kingma 2016), layer by layer: scale g and
        bias b so that every unit's pre-activation has mean 0 and std 1 on the batch `x`.

        Without it the default init shrinks activations ~6x in variance per layer, and the fixed-std noise layers
        (0.5 after every layer) drown the signal: D cannot even fit its labelled examples."""
        h = self.input_noise(x.flatten(1))
        for i, linear in enumerate([*self.linears, self.head]):
            t = F.linear(h, linear.direction / linear.direction.norm(dim=1, keepdim=True))  # (B, out)
            mean, std = t.mean(0), t.std(0) + 1e-6
            linear.scale.copy_(1.0 / std)
            linear.bias.copy_(-mean / std)
            if i < len(self.linears):
                h = self.noises[i](F.relu(linear(h)))


class LabelledSubset(nn.Module):
    """The labelled examples a run may use, as buffers (kept in every checkpoint), and their batch order."""

    def __init__(self, *, num: int, shape: tuple[int, ...], seed: int) -> None:
        super().__init__()
        self.seed = seed  # the order of labelled batches (the subset itself is chosen in `choose`)
        self.register_buffer("indices", torch.zeros(num, dtype=torch.long))  # rows of the training data
        self.register_buffer("images", torch.zeros(num, *shape, dtype=torch.uint8))  # (M, C, H, W) uint8
        self.register_buffer("labels", torch.zeros(num, dtype=torch.long))  # (M,)

    def fill(self, indices: Tensor, images: Tensor, labels: Tensor) -> None:
        self.indices.copy_(indices)
        self.images.copy_(images)
        self.labels.copy_(labels)

    def batch(self, step: int, size: int) -> tuple[Tensor, Tensor]:
        """Labelled batch number `step`: positions [step*size, (step+1)*size) of an endless sequence of seeded
        permutations of the subset (a pure function of the step, so a resumed run draws the same batches)."""
        m = len(self.labels)
        positions = torch.arange(step * size, (step + 1) * size)
        epochs, offsets = positions // m, positions % m
        rows = torch.empty(size, dtype=torch.long)
        for epoch in epochs.unique().tolist():
            perm = torch.randperm(m, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            chosen = epochs == epoch
            rows[chosen] = perm[offsets[chosen]]
        rows = rows.to(self.labels.device)
        return self.images[rows].float().div_(127.5).sub_(1.0), self.labels[rows]


def choose_labelled(labels: Tensor, num_classes: int, per_class: int, seed: int) -> Tensor:
    """Indices of `per_class` examples of every class, chosen by a seeded permutation; sorted by class, then row.

    Raises ConfigError when a class has fewer examples than asked for.
    """
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        rows = (labels == c).nonzero().flatten()
        if len(rows) < per_class:
            raise ConfigError(f"model.labels_per_class {per_class} is more than the data has: class {c} has "
                              f"{len(rows)} example(s); lower --labels-per-class")
        chosen.append(rows[torch.randperm(len(rows), generator=g)[:per_class]].sort().values)
    return torch.cat(chosen)


# ---------------------------------------------------------------------------------------------- sampler


class SSGANSampler(ClassifierSampler):
    """D as the classifier a user keeps (`ganforge classify`); G for sample grids and diversity checks."""

    network_names = ("D", "G")

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        return {"z": self.nets["G"].sample_latent(n, generator=generator)}

    def outputs(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.nets["G"](inputs["z"].to(self.device))


# ---------------------------------------------------------------------------------------------- family


INIT_EXAMPLES = 500  # unlabelled images D's data-dependent initialisation looks at


class SSGAN(Family):
    name = "ssgan"
    config_class = SSGANConfig
    description = "semi-supervised GAN (Improved GAN): D classifies K classes + fake, G does feature matching"
    ema_networks = ("D",)  # the paper classifies with an average of D's weights (train.ema_kimg keeps one)
    sampler = SSGANSampler

    def networks(self, model: SSGANConfig, spec: DataSpec):
        return {"G": lambda: SSGANGenerator(config=model, spec=spec),
                "D": lambda: SSGANDiscriminator(config=model, spec=spec)}

    def batch_keys(self, model):
        return ("x",)  # unlabelled batches; the labelled ones come from the "labelled" state

    def check(self, cfg, spec: DataSpec) -> None:
        if spec.num_classes < 2:
            raise ConfigError("model.family ssgan needs labelled data with at least 2 classes; this dataset has "
                              f"{spec.num_classes}")
        if cfg.data.labels == "clusters":  # its labelled subset and its accuracy are of the dataset's classes
            raise ConfigError("model.family ssgan learns the dataset's classes from a few labels; data.labels: "
                              "clusters would give it k-means clusters instead: use data.labels: dataset")
        if cfg.loss.regularizers:
            raise ConfigError("model.family ssgan has its own losses; loss.regularizers are not supported")
        if cfg.train.n_critic != 1 or cfg.train.n_gen != 1:
            raise ConfigError("model.family ssgan runs one D and one G update per step (train.n_critic/n_gen = 1)")

    def state(self, cfg, spec: DataSpec):
        m = cfg.model
        seed = cfg.train.seed if m.labels_seed is None else m.labels_seed
        return {"labelled": LabelledSubset(num=m.labels_per_class * spec.num_classes, shape=spec.shape, seed=seed)}

    def bind_data(self, cfg, data, state, networks) -> None:
        m = cfg.model
        seed = cfg.train.seed if m.labels_seed is None else m.labels_seed
        indices = choose_labelled(data.labels, data.num_classes, m.labels_per_class, seed)
        state["labelled"].fill(indices, data.data[indices], data.labels[indices])
        # D's data-dependent init on 500 unlabelled images (the paper's), before any update and before the
        # weight average starts; a resume then loads the checkpoint's weights over it.
        rows = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.train.seed))[:INIT_EXAMPLES]
        D = networks["D"]
        D.initialise_from_data(data.to_model_space(data.data[rows]).to(next(D.parameters()).device))

    def optimizers(self, cfg):
        t = cfg.train
        return {"G": OptimizerSpec(("G",), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay),
                "D": OptimizerSpec(("D",), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay)}

    def phases(self, cfg):
        m = cfg.model
        labelled_size = m.labelled_batch_size or cfg.train.batch_size

        def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            x_unl = next(ctx.batches)["x"]
            ctx.scratch["x_unl"] = x_unl
            x_lab, y_lab = ctx.state["labelled"].batch(step, labelled_size)
            z, _ = ctx.sample_inputs(ctx.batch_size)
            with torch.no_grad(), ctx.autocast():
                fake = ctx.nets.train["G"](z)
            D = ctx.nets.train["D"]
            with ctx.autocast():
                # One D pass over labelled, unlabelled and fake rows: D has no batch statistics, so it is the
                # same as three passes, and faster.
                parts = [ctx.augment(x, step) for x in (x_lab.to(x_unl.dtype), x_unl, fake)]
                logits = D(torch.cat(parts)).float()
            l_lab, l_unl, l_fake = logits.split([len(p) for p in parts])
            sup = supervised_loss(l_lab, y_lab)
            real_logit, fake_logit = realness_logit(l_unl), realness_logit(l_fake)
            unsup = 0.5 * ctx.loss.d(real_logit, fake_logit)  # nonsaturating: the paper's L_unsupervised
            if measure:
                report_d_outputs(ctx.stats, real_logit, fake_logit)
                ctx.stats.report("loss_supervised", sup)
                ctx.stats.report("train_acc_labelled", (l_lab.argmax(1) == y_lab).float())
            return sup + m.unsupervised_weight * unsup

        def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            D = ctx.nets.call["D"]  # frozen: gradients flow through D into G only
            z, _ = ctx.sample_inputs(ctx.batch_size)
            with ctx.autocast():
                fake = ctx.nets.train["G"](z)
                with torch.no_grad():
                    real_features = D.features(ctx.augment(ctx.scratch.pop("x_unl"), step)).float()
                fake_features = D.features(ctx.augment(fake, step)).float()
            return feature_matching_loss(real_features, fake_features)

        return [PhaseSpec("D", optimizer="D", loss=d_loss), PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",))]


def labelled_indices(run_or_checkpoint) -> Tensor:
    """The training-data rows a semi-supervised run was given labels for (from its checkpoint)."""
    from ganforge.errors import CheckpointError
    from ganforge.train.checkpoint import load_checkpoint

    state = load_checkpoint(run_or_checkpoint)
    try:
        return state["family_state"]["labelled"]["indices"]
    except KeyError:
        raise CheckpointError(f"{run_or_checkpoint} is not a semi-supervised (ssgan) run") from None


FAMILIES.register("ssgan")(SSGAN())
